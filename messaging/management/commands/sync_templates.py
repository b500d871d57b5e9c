from django.core.management.base import BaseCommand, CommandError

from messaging.content.catalog import sync_catalog
from messaging.errors import MailroomError


class Command(BaseCommand):
    help = "Load the template catalog (templates/email/). Safe to run again: only changed files make new versions."

    def handle(self, *args, **options) -> None:
        try:
            report = sync_catalog()
        except MailroomError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(f"Templates: {report.created} created, {report.updated} updated, {report.unchanged} unchanged.")
        )
