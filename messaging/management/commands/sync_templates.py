from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from messaging.content.catalog import sync_catalog
from messaging.errors import MailroomError


class Command(BaseCommand):
    help = (
        "Load the template catalog (templates/email/ and the package zips in it). Safe to run again: "
        "only changed files make new versions. --from loads another directory or package zip instead."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--from", dest="sources", action="append", type=Path, default=[], help="A catalog directory or a package zip (repeatable)."
        )

    def handle(self, *args, sources: list[Path], **options) -> None:
        missing = [str(source) for source in sources if not source.exists()]
        if missing:
            raise CommandError(f"Not found: {', '.join(missing)}")
        total = [0, 0, 0]
        try:
            for source in sources or [None]:
                if source is not None and source.is_file():
                    report = sync_catalog(root=source.parent, zips=[source])
                else:
                    report = sync_catalog(root=source)
                total = [total[0] + report.created, total[1] + report.updated, total[2] + report.unchanged]
        except MailroomError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Templates: {total[0]} created, {total[1]} updated, {total[2]} unchanged."))
