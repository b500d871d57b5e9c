"""Send now: how long a campaign takes to leave, and to read "sent", on a stock install.

    .venv/bin/python bench/send_now.py [--n 1000] [--keep]

Setup is never timed. A fresh temporary SQLite database (stock settings otherwise: the
sandbox provider, the default number of cluster workers), N contacts subscribed to a
marketing topic in a static segment, a template version, and a campaign written, submitted
and approved through the actions. A real django-q2 cluster (`manage.py qcluster`) runs and
is warmed up. Then the campaign is scheduled "send now" (`schedule_campaign`, what the
wizard's "Send now" does) and the clock starts at that commit. Measured from the rows the
database keeps (not from polling):

- first mail: the earliest `sent_at` of the campaign's messages,
- last mail: the latest `sent_at`,
- sent: the campaign's `finished_at`, written when it is marked sent (`value`).

The last line printed is one JSON object.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from _common import remove_workdir, say, start_cluster, stop_group

REPO = Path(__file__).resolve().parents[1]
TARGET = 10.0  # seconds from "send now" to the "sent" state, 1,000 recipients
TIMEOUT = 180
SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
BODY = (
    '<html><body><p>Hello {{ contact.first_name|default:"there" }}</p>'
    '<p><a href="https://shop.example.com/sale">Spring sale</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


def setup_django(database: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "MAILROOM_SQLITE_PATH": str(database),
            "DATABASE_URL": "",
            "MAILROOM_SENDER_ADDRESS": SENDER_ADDRESS,
            "MAILROOM_LOG_LEVEL": "WARNING",
        }
    )
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django

    django.setup()


def seed(n: int):
    """Migrate; N subscribed contacts in a static segment; an approved campaign (send now)."""
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from marketing.campaigns.actions import approve_campaign, create_campaign, submit_campaign
    from marketing.models import Campaign, Segment, SegmentMember
    from messaging.content.versions import activate_template_version, create_template, save_template_version
    from messaging.models import Contact, Subscription, Topic

    call_command("migrate", "--noinput", verbosity=0)
    users = get_user_model().objects
    author = users.create_user(username="bench-marketer", email="marketer@bench.test", password=None, is_staff=True)
    approver = users.create_user(username="bench-approver", email="approver@bench.test", password=None, is_staff=True)
    author.groups.add(Group.objects.get(name="Marketer"))
    approver.groups.add(Group.objects.get(name="Approver"))
    topic = Topic.objects.create(key="bench-news", name="Bench news", kind=Topic.Kind.MARKETING)
    now = timezone.now()
    with transaction.atomic():
        contacts = Contact.objects.bulk_create(
            [Contact(email=f"reader{i:06d}@example.com", first_name=f"Reader{i}") for i in range(n)], batch_size=2000
        )
        Subscription.objects.bulk_create([Subscription(contact=c, topic=topic, channel="email") for c in contacts], batch_size=2000)
        segment = Segment.objects.create(name="Bench audience", kind=Segment.Kind.STATIC)
        SegmentMember.objects.bulk_create([SegmentMember(segment=segment, contact=c, added_at=now) for c in contacts], batch_size=2000)
    template = create_template(actor=author, key="bench", name="Bench", category="newsletter", channel="email", topic=topic)
    version = save_template_version(
        actor=author, template=template, subject="News for {{ contact.first_name }}", body_format="html", body=BODY
    )
    activate_template_version(actor=author, version=version)
    campaign = create_campaign(
        actor=author, name="Send-now bench", topic=topic, template_version=version, segments=[segment], send_mode=Campaign.SendMode.NOW
    )
    campaign = submit_campaign(actor=author, campaign=campaign)
    campaign = approve_campaign(actor=approver, campaign=campaign)
    connection.close()  # the cluster's processes open their own
    return campaign, author


def measure(campaign, author, *, n: int) -> dict:
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.db.models import Max, Min
    from django.utils import timezone

    from marketing.campaigns.actions import schedule_campaign
    from marketing.models import Campaign, CampaignRecipient
    from messaging.models import OutboxMessage

    started = timezone.now()
    schedule_campaign(actor=author, campaign=campaign)  # "Send now": the campaign starts on the cluster
    messages = OutboxMessage.objects.filter(pk__in=CampaignRecipient.objects.filter(campaign=campaign).values("message_id"))
    deadline = time.monotonic() + TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        state = Campaign.objects.values_list("state", flat=True).get(pk=campaign.pk)
        if state == Campaign.State.SENT:
            break
        time.sleep(0.1)
    figures = messages.aggregate(first=Min("sent_at"), last=Max("sent_at"))
    sent = messages.filter(status=OutboxMessage.Status.SENT).count()
    finished_at = Campaign.objects.values_list("finished_at", flat=True).get(pk=campaign.pk)

    def since(moment) -> float | None:
        return round((moment - started).total_seconds(), 3) if moment else None

    return {
        "state": state,
        "sent": sent,
        "to_first_mail_s": since(figures["first"]),
        "to_last_mail_s": since(figures["last"]),
        "to_sent_state_s": since(finished_at) if state == Campaign.State.SENT else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="recipients (default 1000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (database, cluster log)")
    args = parser.parse_args()
    os.chdir(REPO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-send-now-"))
    report: dict = {"benchmark": "send_now", "value": None, "unit": "s (send now → sent state)", "n": args.n, "target": TARGET}
    cluster = None
    try:
        setup_django(workdir / "mailroom.sqlite3")
        begun = time.monotonic()
        campaign, author = seed(args.n)
        say(f"[send_now] seeded {args.n} contacts and an approved campaign in {time.monotonic() - begun:.1f} s ({workdir})")
        cluster = start_cluster(workdir, warmups=2)
        time.sleep(2.0)  # let the start-up schedules (heartbeat, drain, run campaigns) run and settle
        say(f"[send_now] cluster up (pid {cluster.pid})")
        figures = measure(campaign, author, n=args.n)
        say(
            f"[send_now] {figures['sent']}/{args.n} sent; first mail after {figures['to_first_mail_s']} s, last after "
            f"{figures['to_last_mail_s']} s, campaign {figures['state']} after {figures['to_sent_state_s']} s"
        )
        report |= {"value": figures["to_sent_state_s"], **figures, "database": "sqlite", "loadavg_1m": round(os.getloadavg()[0], 2)}
    finally:
        stop_group(cluster, grace=15)
        remove_workdir(workdir, keep=args.keep)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
