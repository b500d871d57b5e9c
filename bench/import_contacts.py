"""Benchmark: the bulk contact import (messaging.importing.import_contacts) on N rows.

    .venv/bin/python bench/import_contacts.py [--n 100000] [--keep] [--allow-database-url]

Run from the repository root. By default it builds a fresh SQLite database in a temporary
directory (MAILROOM_SQLITE_PATH), migrates it, writes a realistic CSV of N rows (emails,
French and US phones written nationally and internationally, accented names, two
languages, two time zones, a topics column, a `plan` attribute column), then times the
same call `manage.py import_contacts FILE` makes. It never touches db.sqlite3.

DATABASE_URL is ignored unless --allow-database-url is given: a PostgreSQL database is
usually shared, so in that mode the script refuses to run on an unmigrated database or
when any generated email/phone already exists there, and deletes every row it imported
(contacts, subscriptions, consent records, the audit entry, topics it created) afterwards.

The last line printed is one JSON object, e.g.
{"benchmark": "import_contacts", "value": 9.8, "unit": "s", "n": 100000, "target": 30, ...}
where value is the wall-clock time of the import alone (not migrate or CSV generation),
cpu_s the CPU time this process spent in it (the two differ on a busy machine), and
contacts/subscriptions the database's counts right after the import.
"""

import argparse
import csv
import json
import os
import random
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 30
TOPICS = {"newsletter": "Newsletter", "promotions": "Promotions"}

FIRST_NAMES = [
    "Hélène", "Émile", "Zoë", "François", "Chloé", "Jérôme", "Noël", "Agnès", "Léa", "Inès", "Gaëlle", "Cécile",
    "Raphaël", "Benoît", "Loïc", "Anaïs", "José", "Björn", "Amélie", "Thérèse",
    "John", "Mary", "James", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Sarah",
]  # fmt: skip
LAST_NAMES = [
    "Müller", "Lefèvre", "Dupré", "Garçon", "Béranger", "Côté", "Lemaître", "Faure", "Gérard", "Moreau", "Nuñez",
    "Smith", "Johnson", "Williams", "Brown", "O'Brien", "Miller", "Davis", "García", "Martínez",
]  # fmt: skip
US_AREA_CODES = ["212", "312", "415", "617", "646", "718", "202", "305"]
PLANS = ["free", "starter", "pro", "team"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="rows in the generated CSV (default 100000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (CSV and SQLite file)")
    parser.add_argument(
        "--allow-database-url",
        action="store_true",
        help="use DATABASE_URL when it is set (PostgreSQL); the imported rows are deleted afterwards",
    )
    parser.add_argument("--seed", type=int, default=20260101, help="random seed for the generated file")
    parser.add_argument("--mode", choices=["all", "good"], default="all", help="all or nothing (default), or only the good rows")
    parser.add_argument(
        "--job",
        action="store_true",
        help="go through the console's path: an import job (start_import_job, then run_import_job as a worker does), "
        "choosing the topics in the form",
    )
    args = parser.parse_args()
    if not 1 <= args.n <= 5_000_000:  # the generated phone numbers stay unique up to there
        parser.error("--n must be between 1 and 5000000")
    return args


def setup_django(workdir: Path, *, use_database_url: bool) -> None:
    # Everything here must happen before django.setup() reads config.settings.
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["MAILROOM_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    if not use_database_url:
        os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


def ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def phone_for(index: int) -> str:
    """Unique per index: a third French written nationally, a third French or US written
    internationally, a third without a phone."""
    kind = index % 6
    scattered = (index * 48271 + 1357911) % 10**7  # a bijection on 0..10**7-1: unique, not sequential
    if kind in (0, 1):  # French mobile, written nationally: 06 12 34 56 78 or 07 81 23 45 67
        digits = f"1{scattered:07d}" if kind == 0 else f"8{scattered:07d}"
        return f"0{6 + kind} {digits[0:2]} {digits[2:4]} {digits[4:6]} {digits[6:8]}"
    if kind == 2:  # French mobile, international
        digits = f"2{scattered:07d}"
        return f"+33 6 {digits[0:2]} {digits[2:4]} {digits[4:6]} {digits[6:8]}"
    if kind == 3:  # US, international: +1 (212) 555-0150 style, unique over area code + 7 digits
        area = US_AREA_CODES[index % len(US_AREA_CODES)]
        number = 2_000_000 + index  # exchange 2xx–9xx, never 0/1-leading
        return f"+1 ({area}) {number // 10_000:03d}-{number % 10_000:04d}"
    return ""


def write_csv(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["email", "phone", "first_name", "last_name", "locale", "timezone", "topics", "plan"])
        for index in range(n):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            phone = phone_for(index)
            french = phone.startswith(("0", "+33")) if phone else rng.random() < 0.5
            email = f"{ascii_slug(first)}.{ascii_slug(last)}.{index}@{rng.choice(['example.com', 'example.org', 'example.net'])}"
            if rng.random() < 0.05:
                email = email.title()  # people type capitals; the import lower-cases
            topics = rng.choices(["newsletter;promotions", "newsletter", "promotions", ""], weights=[3, 4, 1, 2])[0]
            writer.writerow(
                [
                    email,
                    phone,
                    first,
                    last,
                    "fr" if french else "en",
                    "Europe/Paris" if french else "America/New_York",
                    topics,
                    rng.choice(PLANS),
                ]
            )


def refuse_if_shared_database_is_not_ready(csv_path: Path) -> None:
    """On a shared database: never migrate it, never touch a contact the bench did not create."""
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from messaging.contact_fields import normalise_email, normalise_phone
    from messaging.models import Contact

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        sys.exit("The DATABASE_URL database has unapplied migrations; run `python manage.py migrate` first.")
    with csv_path.open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for name, normalise in (("email", normalise_email), ("phone", normalise_phone)):
        values = [normalise(row[name]) for row in rows if row[name]]
        for start in range(0, len(values), 900):
            if Contact.objects.filter(**{f"{name}__in": values[start : start + 900]}).exists():
                sys.exit(f"Some generated {name}s already exist in the DATABASE_URL database; not importing into it.")


def clean_up_shared_database(csv_path: Path, topics_created: list[int], started_at, created: int) -> None:
    """Delete what the bench imported. Consent records are append-only through the ORM, so
    they go through SQL, and only those of the contacts created by this run."""
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.db import connection, transaction

    from messaging.models import AuditEntry, ConsentRecord, Contact, Subscription, Topic

    with csv_path.open(encoding="utf-8") as stream:
        emails = [row["email"].strip().lower() for row in csv.DictReader(stream)]
    ids: list[int] = []
    for start in range(0, len(emails), 900):
        ids += Contact.objects.filter(email__in=emails[start : start + 900], created_at__gte=started_at).values_list("id", flat=True)
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"DELETE FROM {ConsentRecord._meta.db_table} WHERE contact_id IN ({marks})", chunk)
            cursor.execute(f"DELETE FROM {Subscription._meta.db_table} WHERE contact_id IN ({marks})", chunk)
            cursor.execute(f"DELETE FROM {Contact._meta.db_table} WHERE id IN ({marks})", chunk)
        ours = AuditEntry.objects.filter(
            verb="imported", target_type="messaging.contact", actor=None, created_at__gte=started_at, changes__rows__after__created=created
        )
        AuditEntry.objects.filter(pk__in=ours.order_by("-pk").values_list("pk", flat=True)[:1]).delete()
        Topic.objects.filter(pk__in=topics_created).delete()
    print(f"cleaned up: {len(ids):,} contacts and their subscriptions and consent records", flush=True)


def run_as_job(csv_path: Path, mode: str):
    """The console's path: the upload stores the file in a job, a worker imports it."""
    # Imported after setup_django(): the settings read this run's database from the environment.
    from messaging.import_jobs import run_import_job, start_import_job
    from messaging.importing import ImportReport
    from messaging.models import ImportJob, LegalBasis, Topic

    job = start_import_job(
        actor=None,
        file_name=csv_path.name,
        data=csv_path.read_bytes(),
        mode=mode,
        topics=list(Topic.objects.filter(key="newsletter")),
        legal_basis=LegalBasis.CONSENT,
        consent_confirmed=True,
        inline=False,
    )
    job = run_import_job(job_id=job.pk)
    if job.status not in (ImportJob.Status.DONE, ImportJob.Status.REJECTED):
        sys.exit(f"the import job ended {job.status}: {job.message}")
    print(f"job {job.pk}: {job.message} ({job.attempts} attempt)", flush=True)
    return ImportReport(
        rows=job.rows_total,
        created=job.created,
        updated=job.updated,
        subscriptions=job.subscriptions,
        imported=job.status == ImportJob.Status.DONE,
    )


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-import-bench-"))
    use_database_url = bool(os.environ.get("DATABASE_URL")) and args.allow_database_url
    if os.environ.get("DATABASE_URL") and not use_database_url:
        print("DATABASE_URL is set but ignored: the bench runs on a temporary SQLite file (see --allow-database-url).", flush=True)
    try:
        run(args, workdir, use_database_url=use_database_url)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, workdir: Path, *, use_database_url: bool) -> None:
    setup_django(workdir, use_database_url=use_database_url)
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from messaging.importing import Mode, import_contacts
    from messaging.models import ConsentRecord, Contact, Subscription, Topic

    database = connection.vendor
    started = time.perf_counter()
    if not use_database_url:
        call_command("migrate", verbosity=0, interactive=False)
        elapsed = time.perf_counter() - started
        print(f"migrated a fresh SQLite database at {connection.settings_dict['NAME']} in {elapsed:.1f} s", flush=True)

    csv_path = workdir / "contacts.csv"
    started = time.perf_counter()
    write_csv(csv_path, args.n, args.seed)
    size = csv_path.stat().st_size
    print(f"generated {args.n:,} rows ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s: {csv_path}", flush=True)

    if use_database_url:
        refuse_if_shared_database_is_not_ready(csv_path)
    topics_created = []
    for key, name in TOPICS.items():
        topic, created = Topic.objects.get_or_create(key=key, defaults={"name": name})
        if created:
            topics_created.append(topic.pk)
    started_at = timezone.now()

    def progress(stage: str, count: int) -> None:
        print(f"  {stage}: {count:,} rows ({time.perf_counter() - started:.1f} s)", flush=True)

    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(f"importing into {database} on {os.cpu_count()} cores (load average {load}) …", flush=True)
    started, cpu_started = time.perf_counter(), time.process_time()
    if args.job:
        report = run_as_job(csv_path, args.mode)
    else:
        with csv_path.open("rb") as stream:
            report = import_contacts(actor=None, stream=stream, mode=args.mode or Mode.ALL_OR_NOTHING, progress=progress)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    for error in report.errors[:10]:
        print(f"line {error.line}: {error.message}", file=sys.stderr, flush=True)
    if not report.imported:
        sys.exit(f"the generated file had {report.bad_rows:,} bad rows; nothing was imported")

    contacts, subscriptions = Contact.objects.count(), Subscription.objects.count()
    print(
        f"imported {report.rows:,} rows: {report.created:,} created, {report.updated:,} updated, "
        f"{report.subscriptions:,} subscriptions, {ConsentRecord.objects.count():,} consent records "
        f"in {elapsed:.1f} s ({cpu:.1f} s of CPU)",
        flush=True,
    )
    if use_database_url:
        clean_up_shared_database(csv_path, topics_created, started_at, report.created)
    print(
        json.dumps(
            {
                "benchmark": "import_contacts",
                "value": round(elapsed, 2),
                "unit": "s",
                "n": args.n,
                "target": TARGET_SECONDS,
                "rows_per_s": round(report.rows / elapsed) if elapsed else None,
                "cpu_s": round(cpu, 2),  # this process only: the wall figure also counts waiting for a busy machine
                "contacts": contacts,
                "subscriptions": subscriptions,
                "database": database,
                "path": "import job" if args.job else "import_contacts",
                "mode": args.mode,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
