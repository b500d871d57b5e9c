"""Benchmark: a campaign's fan-out (marketing.campaigns.fanout.fan_out), on SQLite and on PostgreSQL.

    .venv/bin/python bench/fanout.py [--n 100000] [--postgresql-n 1000000] [--no-postgresql]
                                     [--postgresql-server postgres://root@127.0.0.1:5432] [--keep]
    DATABASE_URL=postgres://… .venv/bin/python bench/fanout.py --allow-database-url [--n 1000000]

Run from the repository root. Setup is never timed: each run migrates its database and loads
N subscribed contacts and a static segment with set-based SQL. Then it approves and starts a
campaign through the actions and times `fan_out`: the eligibility INSERT … SELECT into
CampaignRecipient (each eligible row with its message's id), then the chunked INSERT … SELECT
into the outbox under those ids. It then times a second `fan_out` run (resume after a crash:
must create nothing).

What one invocation runs (this is what `make bench` does):

1. SQLite: a fresh database in a temporary directory (MAILROOM_SQLITE_PATH), N = --n
   (default 100,000, target 10 s).
2. PostgreSQL: a fresh temporary database `mailroom_bench_fanout_<pid>` on 127.0.0.1:5432 as
   root (or --postgresql-server; its user may create databases), in a child process (this
   one's Django is set up on SQLite), N = --postgresql-n (default 1,000,000, target 20 s).
   The database is dropped afterwards, also on failure, ctrl-C or SIGTERM (and when the
   child outlives --postgresql-timeout). Its figures are the "postgresql" object of the
   JSON line: {"skipped": reason} with --no-postgresql or when the server cannot be
   reached, {"error": line} when the child failed.

With --allow-database-url and DATABASE_URL set (PostgreSQL), it runs there only instead, in
an already-migrated database it must be allowed to fill: the contacts it creates have emails
under @fanout-bench.invalid and are deleted afterwards with everything the campaign created.
On PostgreSQL it first VACUUMs the tables the timed run writes (what autovacuum would have done
after the previous run's deletions; on a server without autovacuum their dead rows made the
next run slower and noisier).

The last line printed is one JSON object whose top-level figures are the first run's (SQLite,
or DATABASE_URL's), e.g.
{"benchmark": "fanout", "value": 1.5, "unit": "s", "n": 100000, "target": 10.0, …,
 "postgresql": {"value": 18.0, "n": 1000000, "target": 20.0, "recipients_per_s": …, "cpu_s": …,
 "resume_s": …, "duplicates_on_resume": 0, "complete": true, "server_version": "15.…", "load": […]}}
A target is scaled linearly when N is not the default. An incomplete fan-out (missing rows,
or messages created on resume) exits non-zero after that line.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from _common import ServerUnreachable, follow_child, remove_workdir, say, temporary_database

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"sqlite": (100_000, 10.0), "postgresql": (1_000_000, 20.0)}
DOMAIN = "fanout-bench.invalid"
LABEL = "[postgresql]"
POSTGRESQL_SERVER = "postgres://root@127.0.0.1:5432"
POSTGRESQL_TIMEOUT = 600  # seconds for the child (migrate, load 1M contacts, fan out, resume, count): ~115 s at load 3 on 2 cores


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="recipients (default 100000 on SQLite, 1000000 with --allow-database-url)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--allow-database-url", action="store_true", help="use DATABASE_URL (PostgreSQL) only; the rows are deleted afterwards"
    )
    parser.add_argument("--no-postgresql", action="store_true", help="skip the run on a temporary PostgreSQL database")
    parser.add_argument("--postgresql-n", type=int, default=TARGETS["postgresql"][0], help="recipients on PostgreSQL (default 1000000)")
    parser.add_argument(
        "--postgresql-server",
        default=POSTGRESQL_SERVER,
        help=f"where the temporary database is created (default {POSTGRESQL_SERVER}; the user may create databases)",
    )
    parser.add_argument(
        "--postgresql-timeout",
        type=float,
        default=POSTGRESQL_TIMEOUT,
        help=f"seconds the PostgreSQL child may take before it is stopped (default {POSTGRESQL_TIMEOUT})",
    )
    parser.add_argument("--child", choices=["postgresql"], help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    return parser.parse_args()


def setup_django(workdir: Path, *, database_url: str = "") -> None:
    """Django on the SQLite file in workdir, or on `database_url` when given."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["MAILROOM_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ["MAILROOM_KICK_CLUSTER"] = "false"
    os.environ.setdefault("MAILROOM_SENDER_ADDRESS", "Mailroom SAS, 1 rue de la Poste, 75001 Paris")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
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
    # Stopped from outside (even as a background job, where SIGINT is ignored): unwind, so the
    # `finally` blocks stop the PostgreSQL child and drop its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.child == "postgresql":
        postgresql_child(n=args.n, database_url=args.database_url, workdir=Path(args.workdir))
        return
    database_url = os.environ.get("DATABASE_URL", "") if args.allow_database_url else ""
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-fanout-bench-"))
    try:
        report = run(n=args.n, workdir=workdir, database_url=database_url, migrate=not database_url)
        if not database_url:
            report["postgresql"] = (
                {"skipped": "--no-postgresql"}
                if args.no_postgresql
                else run_postgresql(n=args.postgresql_n, server=args.postgresql_server, workdir=workdir, timeout=args.postgresql_timeout)
            )
    finally:
        remove_workdir(workdir, keep=args.keep)
    failures = [part.pop("failure") for part in (report, report.get("postgresql") or {}) if "failure" in part]
    print(json.dumps(report), flush=True)
    if failures:
        sys.exit("; ".join(failures))


def run(*, n: int | None, workdir: Path, database_url: str, migrate: bool) -> dict:
    """One timed fan-out on SQLite or `database_url`; its figures ("failure": why, when the
    fan-out is incomplete). On an existing database (not `migrate`) the rows go afterwards."""
    setup_django(workdir, database_url=database_url)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    vendor = connection.vendor
    default_n, target = TARGETS.get(vendor, TARGETS["sqlite"])
    n = n or default_n
    started = time.perf_counter()
    if migrate:
        call_command("migrate", verbosity=0, interactive=False)
        say(f"migrated a fresh {vendor} database in {time.perf_counter() - started:.1f} s")
    else:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            sys.exit("The DATABASE_URL database has unapplied migrations; run `python manage.py migrate` first.")
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
    say(f"loaded {n:,} contacts into {vendor} in {time.perf_counter() - started:.1f} s")
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

    load = [round(figure, 2) for figure in os.getloadavg()]
    say(f"fanning out to {n:,} recipients on {vendor}, {os.cpu_count()} cores (load {', '.join(map(str, load))}) …")
    started, cpu = time.perf_counter(), time.process_time()
    result = fan_out(campaign=campaign)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    again = fan_out(campaign=campaign)
    resume_s = time.perf_counter() - started
    recipients = CampaignRecipient.objects.filter(campaign=campaign).count()
    messages = OutboxMessage.objects.filter(dedup_key__startswith=f"campaign:{campaign.pk}:").count()
    linked = CampaignRecipient.objects.filter(campaign=campaign, message__isnull=False).count()
    say(f"{result.messages:,} messages in {elapsed:.2f} s on {vendor} ({cpu:.2f} s CPU here); second run created {again.messages}")
    ok = recipients == n and messages == n and linked == n and again.messages == 0
    if not migrate:
        clean_up(campaign, topic, segment)
        User.objects.filter(pk__in=[author.pk, reviewer.pk]).delete()
        template.delete()
    report = {
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
        "load": load,
    }
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            report["server_version"] = cursor.fetchone()[0]
    if not ok:
        report["failure"] = (
            f"incomplete fan-out on {vendor}: {recipients} recipients, {messages} messages, {linked} linked, {again.messages} on resume"
        )
    connection.close()
    return report


# --- PostgreSQL, on a temporary database (child process) -----------------------------------
def run_postgresql(*, n: int, server: str, workdir: Path, timeout: float) -> dict:
    """A fresh database on `server`, migrated and fanned out to in a child process (this
    one's Django is set up on SQLite); the database is dropped afterwards, whatever
    happened. {"skipped": reason} when the server cannot be reached."""
    name = f"mailroom_bench_fanout_{os.getpid()}"
    args = [sys.executable, __file__, "--child", "postgresql", "--n", str(n), "--workdir", str(workdir)]
    args += ["--database-url", f"{server}/{name}"]
    started = time.monotonic()
    try:
        with temporary_database(server, name, label=LABEL) as version:
            say(f"{LABEL} PostgreSQL {version}, temporary database {name}, {n:,} recipients")
            lines, timed_out = follow_child(args, out_path=workdir / "postgresql.out", timeout=timeout, label=LABEL)
    except ServerUnreachable as error:
        say(f"{LABEL} skipped: {error}")
        return {"skipped": str(error)}
    bench_seconds = round(time.monotonic() - started, 1)
    reports = [line for line in lines if line.startswith("{")]
    try:
        result = json.loads(reports[-1])
    except (IndexError, ValueError):
        status = f"timed out after {timeout:.0f} s" if timed_out else "exited without its figures"
        say(f"{LABEL} the child {status}; its last lines:\n" + "\n".join(lines[-15:]))
        return {"error": f"the child {status}: {(lines[-1:] or ['no output'])[0]}", "bench_seconds": bench_seconds}
    result.pop("benchmark", None)
    return result | {"server_version": version, "bench_seconds": bench_seconds}


def postgresql_child(*, n: int, database_url: str, workdir: Path) -> None:
    """In the child: migrate the fresh database, fan out, print the figures (the parent
    reports a failure; this exits 0 when it got that far)."""
    print(json.dumps(run(n=n, workdir=workdir, database_url=database_url, migrate=True)), flush=True)


if __name__ == "__main__":
    main()
