import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from messaging.cluster import supervise_cluster


class Command(BaseCommand):
    help = (
        "Run the django-q2 cluster (like qcluster) so that SIGTERM/SIGINT stop it and all its "
        "processes within MAILROOM_CLUSTER_STOP_SECONDS, letting tasks in progress finish, and "
        "so that it exits when the process that started it (honcho, a shell) dies."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--no-parent-watch", action="store_true", help="keep running when the processes that started it die (e.g. under nohup)"
        )

    def handle(self, *args, **options) -> None:
        settings.SECRET_KEY  # noqa: B018 - django-q2 signs tasks with it: fail now, not in a worker
        status = supervise_cluster(
            stop_seconds=settings.MAILROOM_CLUSTER_STOP_SECONDS,
            watch_parents=not options["no_parent_watch"],
            say=lambda line: self.stdout.write(line),
        )
        sys.stdout.flush()
        if status:
            sys.exit(status)
