"""Benchmark: a campaign's fan-out (marketing.campaigns.fanout.fan_out) for N recipients.

    .venv/bin/python bench/fanout.py [--n 100000] [--keep] [--allow-database-url]

Run from the repository root. By default it builds a fresh SQLite database in a temporary
directory (MAILROOM_SQLITE_PATH), migrates it and loads N subscribed contacts and a static
segment with set-based SQL (setup is never timed). Then it approves and starts a campaign
through the actions and times `fan_out`: the eligibility INSERT … SELECT into
CampaignRecipient (each eligible row with its message's id), then the chunked INSERT … SELECT
into the outbox under those ids.
It then times a second `fan_out` run (resume after a crash: must create nothing).

With --allow-database-url and DATABASE_URL set (PostgreSQL), it runs there instead, in a
database it must be allowed to fill: the contacts it creates have emails under
@fanout-bench.invalid and are deleted afterwards with everything the campaign created.
Before loading, it VACUUMs the tables the timed run writes (what autovacuum would have done
after the previous run's deletions; on a server without autovacuum their dead rows made the
next run slower and noisier).

The last line printed is one JSON object, e.g.
{"benchmark": "fanout", "value": 6.1, "unit": "s", "n": 100000, "target": 10, ...}
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"sqlite": (100_000, 10.0), "postgresql": (1_000_000, 20.0)}
DOMAIN = "fanout-bench.invalid"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="recipients (default 100000 on SQLite, 1000000 on PostgreSQL)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--allow-database-url", action="store_true", help="use DATABASE_URL (PostgreSQL); the rows are deleted afterwards")
    return parser.parse_args()


def setup_django(workdir: Path, *, use_database_url: bool) -> None:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["MAILROOM_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ["MAILROOM_KICK_CLUSTER"] = "false"
    os.environ.setdefault("MAILROOM_SENDER_ADDRESS", "Mailroom SAS, 1 rue de la Poste, 75001 Paris")
    if not use_database_url:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


def load_audience(n: int):
    """N contacts, each subscribed to the topic, all in one static segment: set-based SQL."""
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.db import connection, transaction
    from django.utils import timezone

    from marketing.models import Segment, SegmentMember
    from messaging.models import Contact, Subscription, Topic

    topic, _ = Topic.objects.get_or_create(key="fanout-bench", defaults={"name": "Fan-out bench", "kind": "marketing"})
    segment = Segment.objects.create(name=f"fanout bench {time.time()}", kind=Segment.Kind.STATIC)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    contact, subscription, member = Contact._meta.db_table, Subscription._meta.db_table, SegmentMember._meta.db_table
    zones = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {contact}")
        first_id = cursor.fetchone()[0]
        if connection.vendor == "postgresql":  # one statement; executemany would make 1M round trips
            cursor.execute(
                f"INSERT INTO {contact} (email, first_name, last_name, locale, timezone, attributes, push_tokens, created_at, updated_at) "
                "SELECT 'c' || i || %s, 'C' || i, '', 'en', (ARRAY['Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'UTC'])[mod(i, 4) + 1], "
                "'{}'::jsonb, '[]'::jsonb, %s, %s FROM generate_series(0, %s) AS i",
                [f"@{DOMAIN}", now, now, n - 1],
            )
        else:
            step = 50_000
            for start in range(0, n, step):
                rows = [
                    (f"c{i}@{DOMAIN}", f"C{i}", "", "en", zones[i % 4], "{}", "[]", now, now) for i in range(start, min(n, start + step))
                ]
                cursor.executemany(
                    f"INSERT INTO {contact} (email, first_name, last_name, locale, timezone, attributes, push_tokens, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
        cursor.execute(
            f"INSERT INTO {subscription} (contact_id, topic_id, channel, status, updated_at) "
            f"SELECT id, %s, 'email', 'subscribed', %s FROM {contact} WHERE id > %s",
            [topic.pk, now, first_id],
        )
        cursor.execute(
            f"INSERT INTO {member} (segment_id, contact_id, added_at) SELECT %s, id, %s FROM {contact} WHERE id > %s",
            [segment.pk, now, first_id],
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {contact}, {subscription}, {member}")  # what autovacuum would have done by now
    if connection.vendor == "postgresql":
        # The load wrote ~0.5 GB of WAL; without a checkpoint now, the one it forces lands in
        # the timed run (and the run-to-run spread doubled). Needs superuser; skipped otherwise.
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if cursor.fetchone()[0]:
                cursor.execute("CHECKPOINT")
    return topic, segment


def vacuum_written_tables() -> None:
    """PostgreSQL: VACUUM (ANALYZE) the tables the fan-out writes and the clean-up empties."""
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.db import connection

    from marketing.models import CampaignRecipient, FanoutChunk, SegmentMember
    from messaging.models import Contact, OutboxMessage, Subscription

    tables = [m._meta.db_table for m in (OutboxMessage, CampaignRecipient, FanoutChunk, Contact, Subscription, SegmentMember)]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


def clean_up(campaign, topic, segment) -> None:
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.db import connection, transaction

    from marketing.models import CampaignRecipient, SegmentMember
    from messaging.models import AuditEntry, Contact, OutboxMessage, Subscription

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {CampaignRecipient._meta.db_table} WHERE campaign_id = %s", [campaign.pk])
        cursor.execute(f"DELETE FROM {OutboxMessage._meta.db_table} WHERE dedup_key LIKE %s", [f"campaign:{campaign.pk}:%"])
        cursor.execute(f"DELETE FROM {SegmentMember._meta.db_table} WHERE segment_id = %s", [segment.pk])
        cursor.execute(f"DELETE FROM {Subscription._meta.db_table} WHERE topic_id = %s", [topic.pk])
        OutboxMessage.objects.filter(metadata__notification="campaign", created_at__gte=campaign.created_at).delete()
        AuditEntry.objects.filter(target_type="marketing.campaign", target_id=str(campaign.pk)).delete()
        campaign.variants.all().delete()
        campaign.delete()
        segment.delete()
        cursor.execute(f"DELETE FROM {Contact._meta.db_table} WHERE email LIKE %s", [f"%@{DOMAIN}"])
        topic.delete()
    print("cleaned up the bench rows", flush=True)


def main() -> None:
    args = parse_args()
    use_database_url = bool(os.environ.get("DATABASE_URL")) and args.allow_database_url
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-fanout-bench-"))
    try:
        run(args, workdir, use_database_url=use_database_url)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir: Path, *, use_database_url: bool) -> None:
    setup_django(workdir, use_database_url=use_database_url)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    vendor = connection.vendor
    default_n, target = TARGETS.get(vendor, TARGETS["sqlite"])
    n = args.n or default_n
    if use_database_url:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            sys.exit("The DATABASE_URL database has unapplied migrations; run `python manage.py migrate` first.")
    else:
        call_command("migrate", verbosity=0, interactive=False)
    # Imported after setup_django(): the settings read this run's database from the environment.
    from marketing.campaigns.actions import approve_campaign, create_campaign, schedule_campaign, start_campaign, submit_campaign
    from marketing.campaigns.fanout import fan_out
    from marketing.models import CampaignRecipient
    from messaging.content.versions import activate_template_version, create_template, save_template_version
    from messaging.models import OutboxMessage

    if vendor == "postgresql":
        vacuum_written_tables()
    started = time.perf_counter()
    topic, segment = load_audience(n)
    print(f"loaded {n:,} contacts into {vendor} in {time.perf_counter() - started:.1f} s", flush=True)
    stamp = int(time.time())
    author, _ = User.objects.get_or_create(username=f"fanout-author-{stamp}", defaults={"email": ""})
    reviewer, _ = User.objects.get_or_create(username=f"fanout-approver-{stamp}", defaults={"email": ""})
    template = create_template(actor=None, key=f"fanout-bench-{stamp}", name="Fan-out bench", category="newsletter", topic=topic)
    body = '<p>Hi {{ contact.first_name }}</p><p><a href="https://shop.example.com/">Shop</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    version = save_template_version(actor=None, template=template, subject="Hi {{ contact.first_name }}", body_format="html", body=body)
    activate_template_version(actor=None, version=version)
    campaign = create_campaign(actor=author, name="Fan-out bench", topic=topic, template_version=version, segments=[segment])
    submit_campaign(actor=author, campaign=campaign)
    approve_campaign(actor=reviewer, campaign=campaign)
    schedule_campaign(actor=author, campaign=campaign)
    start_campaign(actor=None, campaign=campaign)

    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"fanning out to {n:,} recipients on {vendor}, {os.cpu_count()} cores (load {load}) …", flush=True)
    started, cpu = time.perf_counter(), time.process_time()
    result = fan_out(campaign=campaign)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    again = fan_out(campaign=campaign)
    resume_s = time.perf_counter() - started
    recipients = CampaignRecipient.objects.filter(campaign=campaign).count()
    messages = OutboxMessage.objects.filter(dedup_key__startswith=f"campaign:{campaign.pk}:").count()
    linked = CampaignRecipient.objects.filter(campaign=campaign, message__isnull=False).count()
    print(f"{result.messages:,} messages in {elapsed:.2f} s ({cpu:.2f} s CPU here); second run created {again.messages}", flush=True)
    ok = recipients == n and messages == n and linked == n and again.messages == 0
    if use_database_url:
        clean_up(campaign, topic, segment)
        User.objects.filter(pk__in=[author.pk, reviewer.pk]).delete()
        template.delete()
    print(
        json.dumps(
            {
                "benchmark": "fanout",
                "value": round(elapsed, 2),
                "unit": "s",
                "n": n,
                "target": target if n == default_n else round(target * n / default_n, 2),
                "database": vendor,
                "recipients_per_s": round(n / elapsed) if elapsed else None,
                "cpu_s": round(cpu, 2),
                "resume_s": round(resume_s, 2),
                "duplicates_on_resume": again.messages,
                "complete": ok,
            }
        ),
        flush=True,
    )
    if not ok:
        sys.exit(f"incomplete fan-out: {recipients} recipients, {messages} messages, {linked} linked, {again.messages} on resume")


if __name__ == "__main__":
    main()
