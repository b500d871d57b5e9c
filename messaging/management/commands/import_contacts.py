import sys
import time

from django.core.management.base import BaseCommand, CommandError

from messaging.errors import MailroomError
from messaging.importing import Mode, import_contacts


class Command(BaseCommand):
    help = "Import contacts from a CSV file (bulk path for large files)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="CSV file, or - for standard input")
        parser.add_argument("--encoding", default="utf-8-sig")
        parser.add_argument(
            "--mode",
            choices=[Mode.ALL_OR_NOTHING, Mode.GOOD_ROWS],
            default=Mode.ALL_OR_NOTHING,
            help="all: any bad row imports nothing (default); good: import exactly the good rows",
        )
        parser.add_argument("--channel", default="email", help="channel for the topics column's subscriptions")
        parser.add_argument("--quiet", action="store_true", help="no progress output")

    def handle(self, *args, **options) -> None:
        started = time.perf_counter()

        def progress(stage: str, count: int) -> None:
            if not options["quiet"]:
                self.stdout.write(f"  {stage}: {count:,} rows ({time.perf_counter() - started:.1f} s)")

        try:
            if options["path"] == "-":
                report = import_contacts(
                    actor=None,
                    stream=sys.stdin.buffer,
                    encoding=options["encoding"],
                    mode=options["mode"],
                    channel=options["channel"],
                    progress=progress,
                )
            else:
                with open(options["path"], "rb") as stream:
                    report = import_contacts(
                        actor=None,
                        stream=stream,
                        encoding=options["encoding"],
                        mode=options["mode"],
                        channel=options["channel"],
                        progress=progress,
                    )
        except FileNotFoundError as error:
            raise CommandError(f"No such file: {options['path']}") from error
        except MailroomError as error:
            raise CommandError(str(error)) from error
        for error in report.errors[:200]:
            self.stderr.write(f"line {error.line}: {error.message}")
        if len(report.errors) > 200:
            self.stderr.write(f"... and {len(report.errors) - 200} more bad rows")
        elapsed = time.perf_counter() - started
        summary = (
            f"{report.rows:,} rows read, {report.created:,} contacts created, {report.updated:,} updated, "
            f"{report.subscriptions:,} subscriptions, {report.bad_rows:,} bad rows in {elapsed:.1f} s"
        )
        if not report.imported:
            raise CommandError(f"Nothing imported: {report.bad_rows:,} bad rows (use --mode good to import the others). {summary}")
        self.stdout.write(self.style.SUCCESS(summary))
