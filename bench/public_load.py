"""The public endpoints under load while a campaign sends: open pixel, click redirect,
unsubscribe page and preference center, through gunicorn, with a django-q2 cluster
draining queued marketing emails into an SMTP sink on the same database at the same time.

    .venv/bin/python bench/public_load.py [--n 4000] [--messages 3000] [--connections 16]

Setup (not timed) follows bench/tracking.py: a fresh temporary SQLite database, 200 sent
marketing emails whose real public links are collected, gunicorn (gthread) on a free
loopback port. Then `--messages` more emails are queued, the SMTP sink and a `qcluster`
start, drains are kicked (what a campaign fan-out does), and the bounded loopback load
generator (asyncio, `--connections` keep-alive connections, closed loop, at most 60 s)
sends an even mix of the four public GETs. Throttles stay on with their limits raised
above the load. Reported: requests, errors (any status other than the page's own),
p50/p99/max per endpoint and overall, and how many emails the cluster sent during the
load. The last line printed is one JSON object.
"""

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tracking

REPO = tracking.REPO
RUN_SECONDS_MAX = 60
TARGET_P99_MS = 250
EXPECTED = {"open": 200, "click": 302, "unsubscribe": 200, "preferences": 200}
HTML = tracking.HTML.replace("</body>", '<p><a href="__MAILROOM_PREFERENCES__">Preferences</a></p></body>')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4000, help="timed requests in all (default 4000)")
    parser.add_argument("--messages", type=int, default=3000, help="emails the campaign sends meanwhile (default 3000)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not 100 <= args.n <= 200_000 or not 0 <= args.messages <= 100_000 or not 1 <= args.connections <= 256:
        parser.error("--n 100..200000, --messages 0..100000, --connections 1..256")
    return args


def prepare(env: dict[str, str], sink_port: int, messages: int) -> dict[str, list[str]]:
    tracking.HTML = HTML  # the emails also carry a preference-center link
    opens, clicks = tracking.prepare(env)
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)  # the pages link the hashed CSS (as `make setup` does)
    # Imported after setup_django(): the settings read this run's database from the environment.
    from messaging.models import Channel, Provider, SandboxMessage
    from tests.reliability.helpers import queue_emails

    base = env["MAILROOM_BASE_URL"]
    pages: dict[str, list[str]] = {"open": opens, "click": clicks, "unsubscribe": [], "preferences": []}
    for html in SandboxMessage.objects.values_list("body_html", flat=True):
        pages["unsubscribe"] += [u.removeprefix(base) for u in re.findall(re.escape(base) + r"/u/[^\"/]+/", html)]
        pages["preferences"] += [u.removeprefix(base) for u in re.findall(re.escape(base) + r"/p/[^\"/]+/", html)]
    if not pages["unsubscribe"] or not pages["preferences"]:
        raise SystemExit("no unsubscribe or preference links found in the sent emails")
    # the campaign: from now on email goes to the SMTP sink; the queue waits for the cluster
    Provider.objects.filter(channel=Channel.EMAIL).update(priority=9)
    Provider.objects.create(
        name="Sink", channel=Channel.EMAIL, kind=Provider.Kind.SMTP, priority=1, config={"host": "127.0.0.1", "port": sink_port}
    )
    queue_emails(messages, prefix="campaign")
    return pages


async def _connection(port: int, requests: list[tuple[str, bytes]], budget: dict, results: list, deadline: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        index = 0
        while budget["left"] > 0 and time.perf_counter() < deadline:
            budget["left"] -= 1
            name, request = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            if length and int(length.group(1)):
                await reader.readexactly(int(length.group(1)))
            results.append((name, time.perf_counter() - started, int(head[9:12])))
    finally:
        writer.close()


async def _drive(port: int, pages: dict[str, list[str]], total: int, connections: int) -> tuple[list, float]:
    host = f"127.0.0.1:{port}"
    mixed = []
    for position in range(max(len(paths) for paths in pages.values())):
        for name, paths in pages.items():
            path = paths[position % len(paths)]
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {tracking.USER_AGENT}\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
            )
            mixed.append((name, request.encode()))
    random.shuffle(mixed)  # every connection sends the four pages in turn, in no fixed order
    results: list = []
    budget = {"left": total}
    started = time.perf_counter()
    deadline = started + RUN_SECONDS_MAX
    await asyncio.gather(*[_connection(port, mixed[i::connections], budget, results, deadline) for i in range(connections)])
    return results, time.perf_counter() - started


def summary(rows: list) -> dict:
    latencies = sorted(seconds * 1000 for _name, seconds, _status in rows)
    return {
        "requests": len(rows),
        "errors": sum(1 for name, _seconds, status in rows if status != EXPECTED[name]),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(latencies[-1], 2),
        "statuses": dict(Counter(status for _name, _seconds, status in rows)),
    }


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-bench-public-"))
    port, sink_port = tracking.free_port(), tracking.free_port()
    env = tracking.environment(workdir, port) | {
        "MAILROOM_PAGES_RATE_LIMIT": str(10**9),
        "MAILROOM_KICK_CLUSTER": "1",
        "MAILROOM_Q_WORKERS": "2",
    }
    processes: list[subprocess.Popen] = []
    try:
        sink = subprocess.Popen(
            [sys.executable, "-m", "tests.support.smtp_sink", "--port", str(sink_port), "--log", str(workdir / "ids.txt")],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        processes.append(sink)
        pages = prepare(env, sink_port, args.messages)
        processes.append(tracking.start_gunicorn(env, port, args.workers, args.threads, workdir / "gunicorn.log"))
        # Imported after setup_django(): the settings read this run's database from the environment.
        from messaging.models import OutboxMessage
        from tests.reliability.helpers import kick_drains

        asyncio.run(_drive(port, pages, args.connections * 8, args.connections))  # warm-up, not counted
        log = (workdir / "cluster.log").open("wb")
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.append(cluster)
        kick_drains(2)
        sent_before = OutboxMessage.objects.filter(status="sent").count()
        deadline = time.monotonic() + 60  # the cluster is up and sending before the first timed request
        while OutboxMessage.objects.filter(status="sent").count() == sent_before:
            if time.monotonic() > deadline or cluster.poll() is not None:
                raise SystemExit(f"the cluster sent nothing; see {workdir / 'cluster.log'}")
            time.sleep(0.2)
        sent_before = OutboxMessage.objects.filter(status="sent").count()
        rows, elapsed = asyncio.run(_drive(port, pages, args.n, args.connections))
        sent_during = OutboxMessage.objects.filter(status="sent").count() - sent_before
        per_page = {name: summary([row for row in rows if row[0] == name]) for name in EXPECTED}
        overall = summary(rows)
        for name, figures in per_page.items():
            print(f"{name:12} {figures}", flush=True)
        print(f"campaign: {sent_during} emails sent during the {elapsed:.1f} s of load", flush=True)
        print(
            json.dumps(
                {
                    "benchmark": "public_load",
                    "value": overall["p99_ms"],
                    "unit": "ms (p99, all public endpoints)",
                    "n": len(rows),
                    "target": TARGET_P99_MS,
                    "rps": round(len(rows) / elapsed, 1),
                    "errors": overall["errors"],
                    "p50_ms": overall["p50_ms"],
                    "max_ms": overall["max_ms"],
                    **{f"{name}_p99_ms": figures["p99_ms"] for name, figures in per_page.items()},
                    **{f"{name}_errors": figures["errors"] for name, figures in per_page.items()},
                    "campaign_messages": args.messages,
                    "campaign_sent_during_load": sent_during,
                    "campaign_send_rate": round(sent_during / elapsed, 1),
                    "connections": args.connections,
                    "workers": args.workers,
                    "threads": args.threads,
                    "database": "sqlite",
                    "load_average": round(os.getloadavg()[0], 1),
                }
            ),
            flush=True,
        )
        return 0 if overall["errors"] == 0 else 1
    finally:
        for process in reversed(processes):
            tracking.stop(process)
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
