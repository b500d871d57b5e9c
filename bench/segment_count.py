"""Benchmark: the segment builder's live count at 100,000 contacts on SQLite.

    .venv/bin/python bench/segment_count.py [--n 100000] [--repeat 5] [--keep]

Run from the repository root. It builds a fresh SQLite database in a temporary directory,
migrates it, and loads N contacts (attributes: lifecycle_stage, tags, score), about one
order per two contacts, three events per contact and email subscriptions for half of
them. Then it times `preview_rules` (count + sample, exactly what the builder runs on
each keystroke) for typical rule trees, `--repeat` times each, and reports the slowest
tree's median as the value. It never touches db.sqlite3. The last line printed is one
JSON object: {"benchmark": "segment_count", "value": 120.5, "unit": "ms", "n": 100000, "target": 300, ...}
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300


def setup_django(workdir: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["MAILROOM_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


def load(n: int, rng: random.Random) -> None:
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.core.management import call_command
    from django.utils import timezone

    from marketing.models import Event, Order
    from messaging.importing import fast_insert
    from messaging.models import Contact, Subscription, Topic

    call_command("migrate", verbosity=0)
    from django.db import connection

    with connection.cursor() as cursor:
        # Loading speed only: this throwaway database needs no durability.
        cursor.execute("PRAGMA synchronous=OFF")
    now = timezone.now()
    stages, tags = ["lead", "prospect", "customer", "churned"], ["vip", "beta", "newsletter", "wholesale", "student"]
    contacts = [
        (
            f"person{i}@example.com",
            f"P{i}",
            "",
            "en" if i % 3 else "fr",
            "Europe/Paris" if i % 2 else "UTC",
            {"lifecycle_stage": rng.choice(stages), "tags": rng.sample(tags, rng.randint(0, 2)), "score": rng.randint(0, 100)},
            [],
            now - timedelta(days=rng.randint(0, 900)),
            now,
        )
        for i in range(n)
    ]
    fast_insert(
        Contact,
        ["email", "first_name", "last_name", "locale", "timezone", "attributes", "push_tokens", "created_at", "updated_at"],
        contacts,
        batch_size=5000,
    )
    ids = list(Contact.objects.values_list("id", flat=True))
    topic = Topic.objects.create(key="newsletter", name="Newsletter")
    fast_insert(
        Subscription,
        ["contact", "topic", "channel", "status", "updated_at"],
        [(pk, topic.pk, "email", "subscribed", now) for pk in ids[::2]],
        batch_size=5000,
    )
    orders = []
    for k, pk in enumerate(rng.sample(ids, n // 2)):
        orders.append(
            (
                pk,
                f"O{k}",
                rng.randint(5, 400),
                "EUR",
                rng.choice(["paid", "paid", "fulfilled", "refunded"]),
                now - timedelta(days=rng.randint(0, 400)),
                {},
                now,
            )
        )
    fast_insert(
        Order, ["contact", "external_id", "amount", "currency", "status", "placed_at", "details", "updated_at"], orders, batch_size=5000
    )
    names = ["lesson_completed", "login", "cart_abandoned", "demo_attended"]
    events = [(pk, rng.choice(names), {}, now - timedelta(days=rng.randint(0, 120)), "bench", now) for pk in ids for _ in range(3)]
    fast_insert(Event, ["contact", "name", "properties", "occurred_at", "source", "received_at"], events, batch_size=10000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def rule(field, operator, value="", **extra):
    return {"type": "rule", "field": field, "operator": operator, "value": value, **extra}


TREES = {
    "lifecycle_stage = customer": {"type": "group", "op": "and", "rules": [rule("attribute", "equals", "customer", key="lifecycle_stage")]},
    "tags includes vip": {"type": "group", "op": "and", "rules": [rule("attribute", "includes", "vip", key="tags")]},
    "seed 003 (stage, tag, min orders, min LTV)": {
        "type": "group",
        "op": "and",
        "rules": [
            rule("attribute", "in", "customer,prospect", key="lifecycle_stage"),
            rule("attribute", "includes", "vip", key="tags"),
            rule("order_count", "gte", "1"),
            rule("lifetime_value", "gte", "50"),
        ],
    },
    "did lesson_completed ≥ 2 in 30 days": {
        "type": "group",
        "op": "and",
        "rules": [rule("event", "count_at_least", "2", key="lesson_completed", days="30")],
    },
    "subscribed AND (fr OR score > 80) AND no order in 90 days": {
        "type": "group",
        "op": "and",
        "rules": [
            rule("subscribed", "is_subscribed", key="newsletter", channel="email"),
            {"type": "group", "op": "or", "rules": [rule("locale", "equals", "fr"), rule("attribute", "gt", "80", key="score")]},
            rule("last_order", "not_in_last_days", "90"),
        ],
    },
    "email contains 99": {"type": "group", "op": "and", "rules": [rule("email", "contains", "99")]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-segbench-"))
    try:
        setup_django(workdir)
        rng = random.Random(20261123)
        started = time.perf_counter()
        load(args.n, rng)
        print(f"loaded {args.n} contacts, orders and events in {time.perf_counter() - started:.1f} s")
        # Imported after setup_django(): the settings read this run's database from the environment.
        from marketing.segments.actions import preview_rules

        results = {}
        for name, tree in TREES.items():
            timings, count = [], 0
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                preview = preview_rules(rules=tree)
                timings.append((time.perf_counter() - t0) * 1000)
                count = preview.count
            results[name] = {"median_ms": round(statistics.median(timings), 1), "max_ms": round(max(timings), 1), "count": count}
            print(f"{name:60s} {results[name]['median_ms']:8.1f} ms median, {results[name]['max_ms']:8.1f} ms max, {count} members")
        slowest = max(results.values(), key=lambda r: r["median_ms"])
        print(
            json.dumps(
                {
                    "benchmark": "segment_count",
                    "value": slowest["median_ms"],
                    "unit": "ms",
                    "n": args.n,
                    "target": TARGET_MS,
                    "trees": {name: r["median_ms"] for name, r in results.items()},
                    "load_avg": round(os.getloadavg()[0], 1),
                },
                ensure_ascii=False,
            )
        )
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
