"""Drive an outbox on whatever database DATABASE_URL names, from a subprocess: the
reliability tests use it for a private PostgreSQL instance the test process is not
connected to (tests/reliability/test_failures.py).

    python -m tests.support.outbox_driver setup --sink-port 2525 --messages 3000
    python -m tests.support.outbox_driver drain --workers 2 --timeout 180
    python -m tests.support.outbox_driver report      # JSON: statuses, Message-IDs, attempts
"""

import argparse
import json
import os

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup", "drain", "report"])
    parser.add_argument("--sink-port", type=int)
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    # Imported after django.setup(): a script the reliability tests start in a subprocess.
    from django.db.models import Count

    from messaging.models import Channel, OutboxMessage, Provider
    from tests.reliability.helpers import drain_until_settled, kick_drains, queue_emails, status_counts

    if args.command == "setup":
        Provider.objects.create(
            name="Sink SMTP",
            channel=Channel.EMAIL,
            kind=Provider.Kind.SMTP,
            priority=1,
            config={"host": "127.0.0.1", "port": args.sink_port},
        )
        queue_emails(args.messages)
        kick_drains(args.workers)
    elif args.command == "drain":
        seconds = drain_until_settled(workers=args.workers, clusters=[], timeout=args.timeout)
        print(json.dumps({"seconds": round(seconds, 1)}))
    else:
        attempts = dict(OutboxMessage.objects.order_by().values_list("attempts").annotate(n=Count("id")))
        print(
            json.dumps(
                {
                    "statuses": status_counts(),
                    "message_ids": list(OutboxMessage.objects.values_list("message_id", flat=True)),
                    "attempts": {str(k): v for k, v in attempts.items()},
                }
            )
        )


if __name__ == "__main__":
    main()
