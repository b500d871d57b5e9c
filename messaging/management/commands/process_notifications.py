import time

from django.core.management.base import BaseCommand, CommandError

from messaging.delivery.inbound import run_handler
from messaging.delivery.outbox import requeue_failed
from messaging.delivery.sending import send_due_messages
from messaging.models import Channel, InboxMessage


class Command(BaseCommand):
    help = "Send due messages (and re-run failed inbound handlers) without a django-q2 cluster."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--daemon", action="store_true", help="keep running, every --interval seconds")
        parser.add_argument("--interval", type=float, default=10.0)
        parser.add_argument("--inbox-only", action="store_true")
        parser.add_argument("--outbox-only", action="store_true")
        parser.add_argument("--kind", choices=Channel.values, help="only this channel")
        parser.add_argument("--retry-failed", action="store_true", help="requeue failed messages first")
        parser.add_argument("--max-age-hours", type=float, default=None, help="with --retry-failed: only this recent")
        parser.add_argument("--limit", type=int, default=500, help="batch size")

    def handle(self, *args, **options) -> None:
        if options["inbox_only"] and options["outbox_only"]:
            raise CommandError("--inbox-only and --outbox-only exclude each other.")
        if options["limit"] < 1 or options["interval"] <= 0:
            raise CommandError("--limit and --interval must be positive.")
        while True:
            self.run_once(options)
            if not options["daemon"]:
                return
            time.sleep(options["interval"])

    def run_once(self, options: dict) -> None:
        if not options["inbox_only"]:
            if options["retry_failed"]:
                count = requeue_failed(actor=None, max_age_hours=options["max_age_hours"], channel=options["kind"])
                self.stdout.write(f"requeued {count} failed messages")
            sent = send_due_messages(limit=options["limit"], channel=options["kind"])
            self.stdout.write(f"outbox: {sent} messages handled")
        if not options["outbox_only"]:
            failed = InboxMessage.objects.filter(status=InboxMessage.Status.FAILED).select_related("inbox", "contact")
            if options["kind"]:
                failed = failed.filter(channel=options["kind"])
            rerun = [run_handler(inbound) for inbound in failed[: options["limit"]]]
            self.stdout.write(f"inbox: {len(rerun)} failed handlers re-run")
