"""Benchmark: the console and the API on a PostgreSQL database that has grown for years.

    .venv/bin/python bench/console_scale.py [--contacts 1000000] [--messages 5000000]
                                            [--repeat 12] [--rebuild] [--only "PAGE;…"]

Run from the repository root, with PostgreSQL at 127.0.0.1:5432 (trust auth). The database
(MAILROOM_SCALE_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/mailroom_scale) is
built once and kept: a later run finds its marker row and only migrates. `--rebuild` drops and
builds it again. The build (never timed as part of a page) loads the demo data (`seed_demo`:
topics, templates, segments, automations, programs) and then, with set-based SQL:

- N contacts (two languages, two time zones, attributes), ~1.1 subscriptions per contact and
  one consent record for each;
- M outbox messages over 400 days: 200 campaigns of M·0.8/200 recipients (with their
  CampaignRecipient rows) and the rest from 50 automations and transactional mail; statuses
  as a real outbox has them; opens (25 %), clicks (5 %), bounces and complaints as
  DeliveryEvent rows;
- 50 automations with runs and step logs, 300,000 orders, 500,000 events, loyalty and
  gift-card ledgers, 300,000 audit entries, a static segment of 200,000 members;
- then the analytics rollups through the product's own backfill (400 days) and ANALYZE.

Then it starts the web server as production runs it (gunicorn, `Procfile`'s command, 2
workers, DEBUG off), logs in through the login form and, warm (one request first), requests
each page `--repeat` times one after another, reporting p50/p95 per page. The last line is one
JSON object: {"benchmark": "console_scale", "value": <slowest page's p95 ms>, "unit": "ms (p95,
slowest page)", "target": 300, "slowest": …, "pages": {name: {"p50": …, "p95": …}}, …}.
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import say, stop_group  # noqa: E402 - bench/ is on the path only once ROOT is known
from segment_count import TREES as SEGMENT_COUNT_TREES  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/mailroom_scale"
BUILD_VERSION = "console-scale-1"  # change when the data the build writes changes
TARGET_MS = 300
SEGMENT_TARGET_MS = 1000
PASSWORD = "scale-bench-password"
USERNAME = "scale-admin"
CAMPAIGNS = 200
AUTOMATIONS = 50
DAYS = 400


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=12, help="timed requests per page")
    parser.add_argument("--rebuild", action="store_true", help="drop the scale database and build it again")
    parser.add_argument("--only", default="", help="page names to time, separated by ;")
    parser.add_argument("--n", type=int, default=None, help="run_all's --quick size: contacts (messages = 5 × n)")
    return parser.parse_args()


# --- the database --------------------------------------------------------------------------------
def database_url() -> str:
    return os.environ.get("MAILROOM_SCALE_DATABASE_URL", DEFAULT_URL)


def ensure_database(url: str, *, rebuild: bool) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and rebuild:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DATABASE_URL"] = url
    os.environ["MAILROOM_KICK_CLUSTER"] = "false"
    os.environ.setdefault("MAILROOM_SENDER_ADDRESS", "Mailroom SAS, 1 rue de la Poste, 75001 Paris")
    import django

    django.setup()


def built_marker() -> str | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_scale_marker (version text, sizes text, built_at timestamptz)")
        cursor.execute("SELECT version || ' ' || sizes FROM bench_scale_marker")
        row = cursor.fetchone()
    return row[0] if row else None


def insert_select(model, exprs: dict[str, str], source: str, params: tuple = ()) -> int:
    """INSERT INTO model's table SELECT … FROM source: `exprs` gives SQL for some fields
    (by attname); every other field gets its default, NULL, now() or '' as a parameter."""
    from django.db import connection

    columns, values, args = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in exprs:
            values.append(exprs[field.attname])
        elif field.null:
            values.append("NULL")
        elif field.has_default():
            values.append("%s")
            args.append(field.get_db_prep_save(field.get_default(), connection))
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("now()")
        elif field.get_internal_type() in ("CharField", "TextField", "SlugField", "EmailField", "URLField"):
            values.append("''")
        else:
            raise ValueError(f"{model.__name__}.{field.name}: no value and no default")
    sql = f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source}"
    # The SQL's own % signs (modulo) are doubled; the defaults are the only parameters.
    sql = sql.replace("%", "%%").replace("%%s", "%s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*args, *params])
        return cursor.rowcount


def insert_bodies(first_message: int) -> int:
    """Every message's text body (OutboxBody, keyed by the message: insert_select skips keys)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_outboxbody (message_id, text, html) SELECT m.id, CASE WHEN m.metadata ? 'campaign' THEN "
            "'Hello, this is campaign ' || (m.metadata->>'campaign') || '. Unsubscribe: https://example.invalid/u/' "
            "ELSE 'Hello from the flow.' END, '' FROM messaging_outboxmessage m WHERE m.id >= %s",
            [first_message],
        )
        return cursor.rowcount


def step(label: str, func, *args, **kwargs):
    started = time.perf_counter()
    result = func(*args, **kwargs)
    say(f"  {label}: {result if result is not None else ''} ({time.perf_counter() - started:.1f} s)")
    return result


def build(contacts: int, messages: int) -> None:
    """Everything the pages read, at scale. Set-based SQL; the demo data gives the rest."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from growth.models import GiftCard, GiftCardTransaction, LoyaltyAccount, LoyaltyProgram, LoyaltyTransaction
    from marketing.analytics.rollups import backfill
    from marketing.models import (
        Automation,
        AutomationRun,
        AutomationStepLog,
        Campaign,
        CampaignRecipient,
        Event,
        Order,
        Segment,
        SegmentMember,
    )
    from messaging.models import AuditEntry, ConsentRecord, Contact, DeliveryEvent, OutboxMessage, Subscription, Template, Topic

    say("building the scale database (once)…")
    step("demo data", call_command, "seed_demo", verbosity=0)
    admin, _created = User.objects.get_or_create(username=USERNAME, defaults={"is_staff": True, "is_superuser": True})
    admin.set_password(PASSWORD)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    newsletter, promotions = Topic.objects.get(key="newsletter"), Topic.objects.get(key="promotions")
    account = Topic.objects.get(key="account")

    step(
        "contacts",
        insert_select,
        Contact,
        {
            "email": "'person' || g.i || '@scale.invalid'",
            "first_name": "'P' || g.i",
            "last_name": "'Scale'",
            "locale": "CASE WHEN g.i % 3 = 0 THEN 'fr' ELSE 'en' END",
            "timezone": "CASE WHEN g.i % 2 = 0 THEN 'Europe/Paris' ELSE 'UTC' END",
            "attributes": "jsonb_build_object('lifecycle_stage', (ARRAY['lead','prospect','customer','churned'])[1 + g.i % 4],"
            " 'score', g.i % 101, 'tags', CASE WHEN g.i % 7 = 0 THEN '[\"vip\"]'::jsonb WHEN g.i % 5 = 0 THEN '[\"beta\"]'::jsonb"
            " ELSE '[]'::jsonb END)",
            "created_at": f"now() - ((g.i % {DAYS}) * interval '1 day' + (g.i % 86400) * interval '1 second')",
            "updated_at": "now()",
        },
        "generate_series(1, %s) AS g(i)",
        (contacts,),
    )
    # The walks below address contacts by id: the scale contacts' ids must be one run.
    scale = Contact.objects.filter(email__endswith="@scale.invalid")
    first_contact = scale.order_by("id").values_list("id", flat=True).first()
    if scale.order_by("-id").values_list("id", flat=True).first() - first_contact + 1 != contacts:
        raise RuntimeError("the scale contacts' ids are not contiguous: run again with --rebuild")
    subscribed = (
        "SELECT c.id, t.topic_id, t.status FROM messaging_contact c JOIN (VALUES (%s, 7, 'subscribed'), (%s, 4, 'subscribed'))"
        " AS t(topic_id, share, status) ON c.id % 10 < t.share WHERE c.email LIKE '%@scale.invalid'"
    )
    step(
        "subscriptions",
        insert_select,
        Subscription,
        {
            "contact_id": "s.id",
            "topic_id": "s.topic_id",
            "channel": "'email'",
            "status": "CASE WHEN s.id % 20 = 0 THEN 'unsubscribed' ELSE 'subscribed' END",
            "updated_at": "now()",
        },
        f"({subscribed}) AS s",
        (newsletter.pk, promotions.pk),
    )
    step(
        "consent records",
        insert_select,
        ConsentRecord,
        {
            "contact_id": "s.contact_id",
            "topic_id": "s.topic_id",
            "channel": "'email'",
            "action": "'subscribed'",
            "source": "'import'",
            "legal_basis": "'consent'",
            "details": "'{}'::jsonb",
            "created_at": f"now() - ((s.contact_id % {DAYS}) * interval '1 day')",
        },
        "messaging_subscription s JOIN messaging_contact c ON c.id = s.contact_id WHERE c.email LIKE '%@scale.invalid'",
    )
    template = (
        Template.objects.filter(topic=newsletter, active_version__isnull=False).first()
        or Template.objects.filter(active_version__isnull=False).first()
    )
    per_campaign = max(1, int(messages * 0.8) // CAMPAIGNS)
    first_campaign = (Campaign.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    step(
        "campaigns",
        insert_select,
        Campaign,
        {
            "name": "'Scale campaign ' || g.i",
            "state": "'sent'",
            "topic_id": str(newsletter.pk),
            "from_address": "'news@scale.invalid'",
            "template_version_id": str(template.active_version_id),
            "created_by_id": str(admin.pk),
            "created_at": f"now() - ((g.i * {DAYS} / {CAMPAIGNS} + 1) * interval '1 day')",
            "updated_at": "now()",
            "started_at": f"now() - ((g.i * {DAYS} / {CAMPAIGNS}) * interval '1 day')",
            "finished_at": f"now() - ((g.i * {DAYS} / {CAMPAIGNS}) * interval '1 day') + interval '1 hour'",
            "approved_at": f"now() - ((g.i * {DAYS} / {CAMPAIGNS} + 1) * interval '1 day')",
            "approved_by_id": str(admin.pk),
            "fanout": "'done'",
            "recipient_count": str(per_campaign),
        },
        "generate_series(1, %s) AS g(i)",
        (CAMPAIGNS,),
    )
    automations = list(Automation.objects.values_list("id", flat=True))
    while len(automations) < AUTOMATIONS:
        automations.append(
            Automation.objects.create(
                name=f"Scale automation {len(automations) + 1}", state=Automation.State.ACTIVE, trigger={"events": ["scale_event"]}
            ).pk
        )
    first_message = (OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    # Campaign k (1…200) sent on its day to per_campaign contacts (an injective walk of the
    # contact ids); the others: automation and transactional mail on every day.
    walk = f"(((g.j * 7919 + g.k * 104729) % {contacts}) + {first_contact})"
    status = "CASE WHEN g.j % 50 = 1 THEN 'failed' WHEN g.j % 100 = 2 THEN 'suppressed' ELSE 'sent' END"  # 2 % failed, 1 % suppressed
    step(
        "campaign messages",
        insert_select,
        OutboxMessage,
        {
            "channel": "'email'",
            "contact_id": walk,
            "to_address": f"'person' || ({walk} - {first_contact - 1}) || '@scale.invalid'",
            "from_address": "'news@scale.invalid'",
            "topic_id": str(newsletter.pk),
            "is_marketing": "true",
            "subject": "'Scale campaign ' || g.k",
            "metadata": f"jsonb_build_object('campaign', g.k + {first_campaign - 1})",
            "status": status,
            "attempts": "1",
            "next_attempt_at": f"now() - ((g.k * {DAYS} / {CAMPAIGNS}) * interval '1 day' + (g.j % 3600) * interval '1 second')",
            "message_id": "'<scale.' || g.k || '.' || g.j || '@scale.invalid>'",
            "error": "CASE WHEN g.j % 50 = 1 THEN '550 5.1.1 no such user' ELSE '' END",
            "created_at": f"now() - ((g.k * {DAYS} / {CAMPAIGNS}) * interval '1 day' + (g.j % 3600) * interval '1 second')",
            "sent_at": f"CASE WHEN g.j % 50 = 1 OR g.j % 100 = 2 THEN NULL ELSE now() - ((g.k * {DAYS} / {CAMPAIGNS}) * interval '1 day'"
            " + (g.j % 3600 - 60) * interval '1 second') END",
        },
        "(SELECT k, j FROM generate_series(1, %s) AS k CROSS JOIN generate_series(0, %s) AS j) AS g(k, j)",
        (CAMPAIGNS, per_campaign - 1),
    )
    step(
        "campaign recipients",
        insert_select,
        CampaignRecipient,
        {
            "campaign_id": "(m.metadata->>'campaign')::bigint",
            "contact_id": "m.contact_id",
            "status": "'queued'",
            "message_id": "m.id",
        },
        "messaging_outboxmessage m WHERE m.id >= %s AND m.metadata ? 'campaign'",
        (first_message,),
    )
    others = messages - per_campaign * CAMPAIGNS
    step(
        "automation and transactional messages",
        insert_select,
        OutboxMessage,
        {
            "channel": "CASE WHEN g.i % 10 = 0 THEN 'sms' ELSE 'email' END",
            "contact_id": f"((g.i * 31) % {contacts}) + {first_contact}",
            "to_address": f"CASE WHEN g.i % 10 = 0 THEN '+3361' || lpad((g.i % 10000000)::text, 7, '0') ELSE 'person' ||"
            f" (((g.i * 31) % {contacts}) + 1) || '@scale.invalid' END",
            "from_address": "'hello@scale.invalid'",
            "topic_id": f"CASE WHEN g.i % 3 = 0 THEN {account.pk} ELSE {newsletter.pk} END",
            "is_marketing": "g.i % 3 <> 0",
            "subject": "CASE WHEN g.i % 3 = 0 THEN 'Your receipt' ELSE 'Welcome step' END",
            "metadata": f"CASE WHEN g.i % 3 = 0 THEN '{{}}'::jsonb ELSE jsonb_build_object('automation', (ARRAY{automations})[1 + g.i %"
            f" {len(automations)}]) END",
            "priority": "CASE WHEN g.i % 3 = 0 THEN 0 ELSE 5 END",
            "status": "CASE WHEN g.i % 997 = 0 THEN 'queued' WHEN g.i % 60 = 1 THEN 'failed' ELSE 'sent' END",
            "attempts": "1",
            "next_attempt_at": f"now() - ((g.i % {DAYS}) * interval '1 day' + (g.i % 86400) * interval '1 second')",
            "message_id": "'<scale.t.' || g.i || '@scale.invalid>'",
            "created_at": f"now() - ((g.i % {DAYS}) * interval '1 day' + (g.i % 86400) * interval '1 second')",
            "sent_at": f"CASE WHEN g.i % 997 = 0 OR g.i % 60 = 1 THEN NULL ELSE now() - ((g.i % {DAYS}) * interval '1 day'"
            " + (g.i % 86400 - 30) * interval '1 second') END",
        },
        "generate_series(1, %s) AS g(i)",
        (max(others, 0),),
    )
    step("message bodies", insert_bodies, first_message)
    for kind, modulo, rest in (("opened", 4, 0), ("clicked", 20, 0), ("bounced", 100, 7), ("complained", 1000, 3)):
        step(
            f"{kind} events",
            insert_select,
            DeliveryEvent,
            {
                "message_id": "m.id",
                "kind": f"'{kind}'",
                "payload": "'{}'::jsonb",
                "occurred_at": "m.sent_at + interval '2 hours'",
            },
            f"messaging_outboxmessage m WHERE m.id >= %s AND m.status = 'sent' AND m.channel = 'email' AND m.id % {modulo} = {rest}",
            (first_message,),
        )
    step(
        "automation runs",
        insert_select,
        AutomationRun,
        {
            "automation_id": f"(ARRAY{automations})[1 + g.i % {len(automations)}]",
            "contact_id": f"((g.i * 13) % {contacts}) + {first_contact}",
            "trigger_key": "'scale:' || g.i",
            "status": "CASE WHEN g.i % 10 = 0 THEN 'active' WHEN g.i % 10 = 1 THEN 'exited' ELSE 'completed' END",
            "next_step_index": "1",
            "started_at": f"now() - ((g.i % {DAYS}) * interval '1 day')",
            "ended_at": f"CASE WHEN g.i % 10 = 0 THEN NULL ELSE now() - ((g.i % {DAYS}) * interval '1 day') + interval '1 day' END",
        },
        "generate_series(1, %s) AS g(i)",
        (contacts // 5,),
    )
    step(
        "automation step logs",
        insert_select,
        AutomationStepLog,
        {"run_id": "r.id", "step_index": "0", "kind": "'send'", "outcome": "'sent'", "detail": "'welcome'", "created_at": "r.started_at"},
        "marketing_automationrun r WHERE r.trigger_key LIKE 'scale:%'",
    )
    step(
        "orders",
        insert_select,
        Order,
        {
            "contact_id": f"((g.i * 17) % {contacts}) + {first_contact}",
            "external_id": "'scale-order-' || g.i",
            "amount": "(g.i % 200) + 9.90",
            "status": "CASE WHEN g.i % 25 = 0 THEN 'refunded' ELSE 'paid' END",
            "placed_at": f"now() - ((g.i % {DAYS}) * interval '1 day' + (g.i % 86400) * interval '1 second')",
        },
        "generate_series(1, %s) AS g(i)",
        (contacts * 3 // 10,),
    )
    step(
        "events",
        insert_select,
        Event,
        {
            "contact_id": f"((g.i * 7) % {contacts}) + {first_contact}",
            "name": "(ARRAY['lesson_completed','login','cart_abandoned','page_viewed'])[1 + g.i % 4]",
            "properties": "'{}'::jsonb",
            "occurred_at": f"now() - ((g.i % {DAYS}) * interval '1 day' + (g.i % 86400) * interval '1 second')",
            "source": "'api'",
            "received_at": f"now() - ((g.i % {DAYS}) * interval '1 day' + (g.i % 86400) * interval '1 second')",
        },
        "generate_series(1, %s) AS g(i)",
        (contacts // 2,),
    )
    program = LoyaltyProgram.objects.order_by("pk").first() or LoyaltyProgram.objects.create(name="Scale points")
    step(
        "loyalty accounts",
        insert_select,
        LoyaltyAccount,
        {
            "program_id": str(program.pk),
            "contact_id": f"g.i * 10 + {first_contact}",
            "balance": "1 + g.i % 500",
            "lifetime_points": "1 + g.i % 900",
            "created_at": "now()",
            "updated_at": "now()",
        },
        "generate_series(0, %s) AS g(i)",
        (contacts // 10 - 1,),
    )
    step(
        "loyalty ledger",
        insert_select,
        LoyaltyTransaction,
        {
            "account_id": "a.id",
            "kind": "'earned'",
            "points": "1 + a.id % 50",
            "balance_after": "a.balance",
            "reason": "'Order'",
            "created_at": "a.created_at",
        },
        "growth_loyaltyaccount a CROSS JOIN generate_series(1, 3)",
    )
    step(
        "gift cards",
        insert_select,
        GiftCard,
        {
            "code_hash": "md5('scale-card-' || g.i) || md5('x' || g.i)",
            "last4": "lpad((g.i % 10000)::text, 4, '0')",
            "initial_amount": "50",
            "balance": "50 - (g.i % 50)",
            "batch": "'scale'",
            "created_at": f"now() - ((g.i % {DAYS}) * interval '1 day')",
        },
        "generate_series(1, %s) AS g(i)",
        (max(contacts // 50, 10),),
    )
    step(
        "gift-card ledger",
        insert_select,
        GiftCardTransaction,
        {
            "card_id": "c.id",
            "kind": "'purchase'",
            "amount": "c.initial_amount",
            "balance_after": "c.initial_amount",
            "idempotency_key": "'scale-purchase-' || c.id",
            "created_at": "c.created_at",
        },
        "growth_giftcard c WHERE c.batch = 'scale'",
    )
    step(
        "audit trail",
        insert_select,
        AuditEntry,
        {
            "actor_id": str(admin.pk),
            "verb": "(ARRAY['updated','created','subscribed','campaign_approved'])[1 + g.i % 4]",
            "target_type": "'messaging.contact'",
            "target_id": f"(((g.i * 11) % {contacts}) + {first_contact})::text",
            "target_repr": "'person' || g.i || '@scale.invalid'",
            "changes": "'{}'::jsonb",
            "created_at": f"now() - ((g.i % {DAYS}) * interval '1 day' + (g.i % 86400) * interval '1 second')",
        },
        "generate_series(1, %s) AS g(i)",
        (contacts * 3 // 10,),
    )
    static = Segment.objects.create(name="Scale static 200k", kind=Segment.Kind.STATIC)
    step(
        "static segment",
        insert_select,
        SegmentMember,
        {"segment_id": str(static.pk), "contact_id": f"g.i * 5 + {first_contact}", "added_at": "now()"},
        "generate_series(0, %s) AS g(i)",
        (contacts // 5 - 1,),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('messaging_contact', 'id'), (SELECT max(id) FROM messaging_contact))")
    # What autovacuum does on a live database (this server may run with it off): statistics for
    # the planner and a visibility map, so index-only scans need not visit the table.
    step("VACUUM (ANALYZE)", lambda: connection.cursor().execute("VACUUM (ANALYZE)"))
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    step("analytics rollups (backfill, 400 days)", backfill, first_day=today - timedelta(days=DAYS), last_day=today)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM bench_scale_marker")
        cursor.execute("INSERT INTO bench_scale_marker VALUES (%s, %s, now())", [BUILD_VERSION, f"{contacts}/{messages}"])


# --- the pages ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(url: str, port: int, workdir: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "0", "MAILROOM_DEBUG": "0", "MAILROOM_BIND": f"127.0.0.1:{port}"}
    env.update({"MAILROOM_API_USER_RATE": "100000/min", "MAILROOM_LOGIN_MAX_FAILURES": "1000"})
    log = (workdir / "gunicorn.log").open("wb")
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--timeout",
        "120",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.3)
    stop_group(server)
    raise RuntimeError(f"gunicorn did not come up: see {workdir / 'gunicorn.log'}")


def log_in(base: str):
    import requests

    session = requests.Session()
    page = session.get(f"{base}/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{base}/admin/login/",
        data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"},
        headers={"Referer": f"{base}/admin/login/"},
    )
    if not answer.url.rstrip("/").endswith("/admin"):
        raise RuntimeError(f"could not log in: {answer.status_code} {answer.url}")
    jwt = session.post(f"{base}/api/v1/auth/token/", json={"username": USERNAME, "password": PASSWORD}).json()["access"]
    return session, jwt


# The segment builder's trees, as bench/segment_count.py times them at 100,000 contacts.
SEGMENT_TREES = {
    f"segment count: {name}": SEGMENT_COUNT_TREES[name]
    for name in (
        "lifecycle_stage = customer",
        "seed 003 (stage, tag, min orders, min LTV)",
        "subscribed AND (fr OR score > 80) AND no order in 90 days",
    )
}


def days_ago(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() - days * 86400))


def deep_cursor(path: str, ordered, rows: int) -> str:
    """The API's keyset cursor pointing at the middle of a list (what following `next` from
    the last numbered page reaches, only deeper): the way the API goes deep."""
    from rest_framework.pagination import Cursor

    from messaging.api.pagination import KeysetPagination

    middle = ordered[rows // 2]
    keyset = KeysetPagination()
    keyset.base_url = "http://bench" + path
    field = ordered.query.order_by[0].lstrip("-")
    link = keyset.encode_cursor(Cursor(offset=0, reverse=False, position=str(getattr(middle, field))))
    return link.removeprefix("http://bench")


def pages(contacts: int, messages: int) -> dict[str, tuple[str, str, dict | None]]:
    """name → (method, path, JSON body). Ids from the built data."""
    from marketing.models import Campaign, Segment
    from messaging.models import Contact, OutboxMessage, Topic

    campaign = Campaign.objects.filter(name="Scale campaign 3").values_list("pk", flat=True).first()
    contact = Contact.objects.filter(email=f"person{contacts // 2}@scale.invalid").values_list("pk", flat=True).first()
    topic = Topic.objects.get(key="newsletter").pk
    segment = Segment.objects.filter(name="Scale static 200k").values_list("pk", flat=True).first()
    listed = {
        "dashboard": ("GET", "/admin/", None),
        "contacts": ("GET", "/admin/messaging/contact/", None),
        "contacts searched by email prefix": ("GET", "/admin/messaging/contact/?q=person4242", None),
        "contacts filtered by topic": ("GET", f"/admin/messaging/contact/?subscribed_to={topic}", None),
        "contact 360": ("GET", f"/admin/messaging/contact/{contact}/change/", None),
        "outbox": ("GET", "/admin/messaging/outboxmessage/", None),
        "outbox filtered by status and channel": ("GET", "/admin/messaging/outboxmessage/?status__exact=failed&channel__exact=email", None),
        "outbox searched": ("GET", "/admin/messaging/outboxmessage/?q=person4242%40scale.invalid", None),
        "campaign report": ("GET", f"/admin/marketing/campaign/{campaign}/report/", None),
        "campaign recipients": ("GET", f"/admin/marketing/campaign/{campaign}/recipients/", None),
        "analytics 30 days": ("GET", "/admin/analytics/?range=30", None),
        "analytics 366 days (the longest range)": ("GET", f"/admin/analytics/?since={days_ago(365)}&until={days_ago(0)}", None),
        "automation runs": ("GET", "/admin/marketing/automationrun/", None),
        "consent log": ("GET", "/admin/messaging/consentrecord/", None),
        "audit trail": ("GET", "/admin/messaging/auditentry/", None),
        "segment members": ("GET", f"/admin/marketing/segment/{segment}/change/", None),
        "API contacts, first page": ("GET", "/api/v1/contacts/", None),
        "API contacts, deep page": (
            "GET",
            deep_cursor("/api/v1/contacts/", Contact.objects.order_by("-created_at", "-id"), contacts),
            None,
        ),
        "API messages, first page": ("GET", "/api/v1/messages/", None),
        "API messages, deep page": ("GET", deep_cursor("/api/v1/messages/", OutboxMessage.objects.order_by("-id"), messages), None),
        "API campaign recipients": ("GET", f"/api/v1/campaigns/{campaign}/recipients/", None),
        "API analytics daily, 366 days": (
            "GET",
            "/api/v1/analytics/daily/?since=" + time.strftime("%Y-%m-%d", time.gmtime(time.time() - 365 * 86400)),
            None,
        ),
    }
    for name, tree in SEGMENT_TREES.items():
        listed[name] = ("POST", "/api/v1/segments/preview/", {"rules": tree})
    return listed


def time_pages(base: str, session, jwt: str, listed: dict, repeat: int) -> dict[str, dict]:
    results = {}
    for name, (method, path, body) in listed.items():
        headers = {"Authorization": f"Bearer {jwt}"} if path.startswith("/api/") else {}
        if method == "POST" and not path.startswith("/api/"):
            headers["X-CSRFToken"] = session.cookies.get("csrftoken", "")
        first = session.request(method, base + path, json=body, headers=headers, timeout=300)
        if first.status_code >= 400:
            results[name] = {"error": f"{first.status_code} {path}"}
            say(f"  {name}: HTTP {first.status_code}")
            continue
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            answer = session.request(method, base + path, json=body, headers=headers, timeout=300)
            times.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        results[name] = {"p50": round(statistics.median(times), 1), "p95": round(p95, 1)}
        say(f"  {name:58s} p50 {results[name]['p50']:8.1f} ms   p95 {results[name]['p95']:8.1f} ms")
    return results


def main() -> None:
    args = parse_args()
    contacts = args.n or args.contacts
    messages = args.n * 5 if args.n else args.messages
    url = database_url()
    if contacts != 1_000_000:  # a smaller run (run_all --quick) keeps its own database: the big one took minutes
        url = f"{url}_{contacts}"
    ensure_database(url, rebuild=args.rebuild)
    setup_django(url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    wanted = f"{BUILD_VERSION} {contacts}/{messages}"
    marker = built_marker()
    if marker != wanted:
        if marker is not None:  # another size or an older build: start again
            ensure_database(url, rebuild=True)
            from django.db import connections

            connections.close_all()
            call_command("migrate", verbosity=0)
        started = time.perf_counter()
        build(contacts, messages)
        say(f"built in {time.perf_counter() - started:.0f} s")
    else:
        say(f"reusing the scale database ({marker})")
    listed = pages(contacts, messages)
    if args.only:
        listed = {name: spec for name, spec in listed.items() if name in args.only.split(";")}
    workdir = ROOT / "var" / "bench-console-scale"
    workdir.mkdir(parents=True, exist_ok=True)
    call_command("collectstatic", interactive=False, verbosity=0)  # what `make run` does before gunicorn serves pages
    port = free_port()
    server = start_server(url, port, workdir)
    try:
        session, jwt = log_in(f"http://127.0.0.1:{port}")
        results = time_pages(f"http://127.0.0.1:{port}", session, jwt, listed, args.repeat)
    finally:
        stop_group(server)
    timed = {name: r for name, r in results.items() if "p95" in r}
    pages_only = {name: r for name, r in timed.items() if not name.startswith("segment count")}
    segments = {name: r for name, r in timed.items() if name.startswith("segment count")}
    slowest = max(pages_only, key=lambda name: pages_only[name]["p95"]) if pages_only else None
    slowest_segment = max(segments, key=lambda name: segments[name]["p95"]) if segments else None
    print(
        json.dumps(
            {
                "benchmark": "console_scale",
                "value": pages_only[slowest]["p95"] if slowest else None,
                "unit": "ms (p95, slowest page)",
                "target": TARGET_MS,
                "n": contacts,
                "messages": messages,
                "slowest": slowest,
                "segment_count_p95_ms": segments[slowest_segment]["p95"] if slowest_segment else None,
                "segment_count_target_ms": SEGMENT_TARGET_MS,
                "errors": {name: r["error"] for name, r in results.items() if "error" in r},
                "pages": results,
                "database": "postgresql",
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
