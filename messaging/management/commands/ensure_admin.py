import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand

from config.roles import ADMIN_ROLE
from messaging import site


class Command(BaseCommand):
    help = "Create (or reset) the console login and print its URL, user and password."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="", help="default: a new random password")

    def handle(self, *args, **options) -> None:
        password = options["password"] or secrets.token_urlsafe(12)
        user, _created = User.objects.get_or_create(username=options["username"], defaults={"email": "admin@mailroom.test"})
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get_or_create(name=ADMIN_ROLE)[0])
        url = site.current().link("/admin/")
        self.stdout.write(self.style.SUCCESS("Mailroom console login"))
        self.stdout.write(f"  URL:      {url}")
        self.stdout.write(f"  user:     {user.username}")
        self.stdout.write(f"  password: {password}")
