"""Benchmark: per-recipient rendering of a catalog newsletter (messaging.content.rendering).

    .venv/bin/python bench/render.py [--n 20000] [--template weekly-progress] [--locale en] [--keep]

Run from the repository root. It builds a fresh SQLite database in a temporary directory
(MAILROOM_SQLITE_PATH, set before django.setup()), migrates it quietly and loads the
template catalog (templates/email/). Then it:

1. times the compile step once (compile_body: MJML → HTML → inlined CSS → text part),
   on the active version of the chosen template, and the HTML-to-text conversion alone;
2. renders once to warm up, and checks that a second render is served from the parsed
   template cache (compiled_templates) without parsing again;
3. renders the version for N recipients, each with its own context (contact data as
   contact_context() builds it, plus the template's variables), timing every call.

It never touches db.sqlite3; DATABASE_URL is ignored. The last line printed is one JSON
object, e.g.
{"benchmark": "render", "value": 0.15, "unit": "ms", "n": 20000, "target": 0.2, "p99_ms": 0.3, ...}
"""

import argparse
import inspect
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 0.2

FIRST_NAMES = ["Hélène", "Émile", "Zoë", "François", "Chloé", "Ada", "Grace", "John", "Mary", "Léa", "Inès", "Raphaël"]
LAST_NAMES = ["Müller", "Lefèvre", "Dupré", "Côté", "Lovelace", "Hopper", "Smith", "O'Brien", "García", "Moreau"]
HIGHLIGHTS = ["Finished unit 3", "Seven-day streak", "Quiz score: 92%", "First speaking exercise", "Reviewed 40 flashcards"]
PLANS = ["free", "starter", "pro", "team"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="recipients to render (default 20000)")
    parser.add_argument("--template", default="weekly-progress", help="catalog key (default weekly-progress; welcome also works)")
    parser.add_argument("--locale", default="en", help="catalog locale (default en)")
    parser.add_argument("--seed", type=int, default=20260101, help="random seed for the recipients")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (SQLite file)")
    return parser.parse_args()


def setup_django(workdir: Path) -> None:
    # Everything here must happen before django.setup() reads config.settings.
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["MAILROOM_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


def template_variables(key: str, index: int, rng: random.Random) -> dict:
    """The template's own variables for one recipient (the caller's context)."""
    if key == "weekly-progress":
        return {
            "progress": {
                "week": f"{1 + index % 28} May 2026",
                "lessons_completed": rng.randint(0, 12),
                "minutes": rng.randint(0, 400),
                "highlights": rng.sample(HIGHLIGHTS, rng.randint(0, 3)),
                "url": f"https://example.com/learn/?r={index}",
            }
        }
    if key == "welcome":
        return {"start_url": f"https://example.com/start/?r={index}"}
    return {}


def recipients(n: int, key: str, seed: int) -> list[dict]:
    """N distinct per-recipient contexts, built the way the outbox builds them:
    contact_context(contact) | the caller's context. Built before timing starts."""
    # Imported after setup_django(): the settings read this run's database from the environment.
    from messaging.content.merge_tags import contact_context
    from messaging.models import Contact

    rng = random.Random(seed)
    contexts = []
    for index in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        contact = Contact(
            email=f"r{index}@example.com",
            first_name=first,
            last_name=last,
            phone=f"+336{index:08d}",
            locale=rng.choice(["en", "fr"]),
            timezone=rng.choice(["Europe/Paris", "America/New_York"]),
            attributes={"plan": rng.choice(PLANS), "cohort": index % 12},
        )
        contexts.append(contact_context(contact) | template_variables(key, index, rng))
    return contexts


def timed_ms(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-bench-render-"))
    try:
        setup_django(workdir)
        # Imported after setup_django(): the settings read this run's database from the environment.
        from django.core.management import call_command

        from messaging.content import rendering
        from messaging.content.catalog import sync_catalog
        from messaging.models import Template

        call_command("migrate", verbosity=0, interactive=False)
        started = time.perf_counter()
        report = sync_catalog()
        print(f"catalog: {report.created} templates loaded in {time.perf_counter() - started:.1f} s")

        template = Template.objects.select_related("active_version").get(key=args.template, locale=args.locale)
        version = template.active_version
        if version is None:
            print(f"{args.template}/{args.locale} has no active version", file=sys.stderr)
            return 1

        # 1. compile once (what saving a version does; never per recipient)
        started = time.perf_counter()
        html, text = rendering.compile_body(body_format=version.body_format, body=version.body, text_body=version.text_body)
        compile_ms = (time.perf_counter() - started) * 1000
        assert (html, text) == (version.compiled_html, version.compiled_text), "compile_body is not deterministic"
        print(f"compile_body: {compile_ms:.1f} ms ({len(version.body)} B of MJML → {len(html)} B of HTML)")
        # the text part alone (part of compile_body): best of 20 conversions of that HTML
        text_ms = min(timed_ms(rendering.html_to_text, html) for _ in range(20))
        print(f"html_to_text: {text_ms:.2f} ms ({len(html)} B of HTML → {len(text)} characters of text)")

        # render_version takes the version (render_version(version, ctx)); older code took its id.
        by_id = next(iter(inspect.signature(rendering.render_version).parameters)) == "version_id"
        target = version.pk if by_id else version

        contexts = recipients(args.n, args.template, args.seed)

        # 2. warm-up, then prove the second render is a cache hit that parses nothing
        rendering.compiled_templates.cache_clear()
        parse_calls = 0
        real_parse_parts = rendering.parse_parts

        def counting_parse_parts(**parts):
            nonlocal parse_calls
            parse_calls += 1
            return real_parse_parts(**parts)

        rendering.parse_parts = counting_parse_parts
        try:
            warm = rendering.render_version(target, contexts[0])
            after_warm = rendering.compiled_templates.cache_info()
            second = rendering.render_version(target, contexts[1 % len(contexts)])
            after_second = rendering.compiled_templates.cache_info()
        finally:
            rendering.parse_parts = real_parse_parts
        cache_hit = after_second.hits == after_warm.hits + 1 and after_second.misses == after_warm.misses and parse_calls == 1
        print(
            f"warm-up render: parse_parts calls={parse_calls}, cache {after_warm.misses} miss; "
            f"second render: {'cache hit, no recompile' if cache_hit else 'RECOMPILED'} "
            f"(hits {after_warm.hits}→{after_second.hits}, misses {after_second.misses})"
        )
        if warm.missing or second.missing:
            print(f"warning: missing variables {sorted(set(warm.missing) | set(second.missing))}", file=sys.stderr)

        # 3. N recipients, each call timed
        timings: list[int] = []
        missing = 0
        clock = time.perf_counter_ns
        render = rendering.render_version
        cpu_started = time.process_time_ns()
        total_started = clock()
        for context in contexts:
            started = clock()
            rendered = render(target, context)
            timings.append(clock() - started)
            if rendered.missing:
                missing += 1
        total_ms = (clock() - total_started) / 1e6
        cpu_ms = (time.process_time_ns() - cpu_started) / 1e6 / len(contexts)
        assert contexts[-1]["contact"]["first_name"] in rendered.html, "the last recipient's name is not in the HTML"

        per_ms = sorted(t / 1e6 for t in timings)
        mean_ms = statistics.fmean(per_ms)
        p50_ms = per_ms[len(per_ms) // 2]
        p99_ms = per_ms[min(len(per_ms) - 1, int(len(per_ms) * 0.99))]
        print(
            f"rendered {args.n} recipients of {args.template}/{args.locale} v{version.number} in {total_ms:.0f} ms: "
            f"mean {mean_ms:.3f} ms, p50 {p50_ms:.3f} ms, p99 {p99_ms:.3f} ms, max {per_ms[-1]:.3f} ms "
            f"(target {TARGET_MS} ms); CPU time {cpu_ms:.3f} ms per recipient; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs; recipients with missing variables: {missing}"
        )
        print(
            json.dumps(
                {
                    "benchmark": "render",
                    "value": round(mean_ms, 4),
                    "unit": "ms",
                    "n": args.n,
                    "target": TARGET_MS,
                    "p99_ms": round(p99_ms, 4),
                    "compile_ms": round(compile_ms, 1),
                    "html_to_text_ms": round(text_ms, 2),
                    "template": f"{args.template}/{args.locale}",
                    "p50_ms": round(p50_ms, 4),
                    "cpu_ms": round(cpu_ms, 4),
                    "load_avg": round(os.getloadavg()[0], 1),
                    "cache_hit": cache_hit,
                    "missing": missing,
                }
            )
        )
        return 0 if cache_hit and missing == 0 else 1
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
