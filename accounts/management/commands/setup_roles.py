from django.core.management.base import BaseCommand

from accounts.roles import setup_roles


class Command(BaseCommand):
    help = "Create or update the role groups (Marketer, Approver, Ops, Support, Admin)."

    def handle(self, *args, **options) -> None:
        for role, count in setup_roles().items():
            self.stdout.write(f"{role}: {count} permissions")
