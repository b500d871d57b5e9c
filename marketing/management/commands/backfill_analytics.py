"""Recompute analytics rollups for a range of days (after an import, a fix, or a fresh install)."""

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from marketing.analytics.rollups import backfill, first_recomputable_day


class Command(BaseCommand):
    help = "Recompute DailyStat rows from raw events, orders and the outbox (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90, help="How many days back from today (default 90).")
        parser.add_argument("--since", type=date.fromisoformat, help="First day (YYYY-MM-DD); overrides --days.")
        parser.add_argument("--until", type=date.fromisoformat, help="Last day (YYYY-MM-DD), default today.")

    def handle(self, *args, days: int, since: date | None, until: date | None, **options):
        last_day = until or timezone.localdate()
        first_day = since or last_day - timedelta(days=max(days, 1) - 1)
        if first_day > last_day:
            raise CommandError("--since must not be after --until.")
        if (first_kept := first_recomputable_day()) is not None and first_day < first_kept:
            if last_day < first_kept:
                raise CommandError(
                    f"Days before {first_kept} keep their rows: their delivery events may have been deleted under the retention "
                    "policy (MAILROOM_EVENT_RETENTION_DAYS), so recomputing them would count less."
                )
            self.stdout.write(
                f"Days before {first_kept} keep their rows (their delivery events may have been deleted under the retention policy)."
            )
            first_day = first_kept
        written = backfill(first_day=first_day, last_day=last_day)
        self.stdout.write(f"Recomputed {first_day}..{last_day}: {written} rows.")
