"""The console login `make run` prints on every start.

The first run creates the admin with a random password and keeps it in
`var/admin_password` (mode 0600); later runs leave the password alone and print it again.
If someone changed it in the console (or with `changepassword`), the stored one no longer
works: the command says so instead of printing a stale password. Deleting the file asks
for a new random password on the next run; `--password` sets one explicitly.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.roles import ADMIN_ROLE
from messaging import site


def read_stored_password(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return ""


def store_password(path: Path, password: str) -> None:
    """Write the password readable by this user only, atomically (a crash leaves the old
    file or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(password + "\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = (
        "Create the console login on first run (random password kept in var/admin_password), "
        "then print its URL, user and password on every run without changing it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="", help="set this password (and store it); default: keep the stored one")

    def handle(self, *args, **options) -> None:
        path = Path(settings.ADMIN_PASSWORD_FILE)
        stored = read_stored_password(path)
        with transaction.atomic():
            user, created = User.objects.select_for_update().get_or_create(
                username=options["username"], defaults={"email": "admin@mailroom.test"}
            )
            user.is_staff = user.is_superuser = user.is_active = True
            password = options["password"]
            if not password and (created or not stored):
                password = secrets.token_urlsafe(12)
            if password:
                user.set_password(password)
                user.save()
                # Inside the transaction: if the file cannot be written the password is not changed.
                try:
                    store_password(path, password)
                except OSError as error:
                    raise CommandError(f"Cannot store the console password in {path} ({error}); nothing was changed.") from error
            else:
                user.save(update_fields=["is_staff", "is_superuser", "is_active"])
                if user.check_password(stored):
                    password = stored
            user.groups.add(Group.objects.get_or_create(name=ADMIN_ROLE)[0])

        url = site.current().link("/admin/")
        self.stdout.write(self.style.SUCCESS("Mailroom console login"))
        self.stdout.write(f"  URL:      {url}")
        self.stdout.write(f"  user:     {user.username}")
        if password:
            self.stdout.write(f"  password: {password}  (kept in {path})")
        else:
            self.stdout.write(
                "  password: changed in the console since it was stored in "
                f"{path}; use the new one. To get a new random one, delete that file and run this again, "
                f"or set one with `python manage.py changepassword {user.username}`."
            )
