"""Tracking endpoints under load: the open pixel and the click redirect, through gunicorn.

    .venv/bin/python bench/tracking.py [--n 5000] [--connections 16] [--workers 2] [--threads 2] [--keep]

Setup is never timed. On a fresh temporary SQLite database (MAILROOM_SQLITE_PATH; the
project's db.sqlite3 and DATABASE_URL are never touched) it migrates, sends 200 marketing
emails with two links each through the sandbox provider, and takes their real open-pixel
and click URLs from the stored emails. Then it starts gunicorn (gthread workers, keep-alive)
on a free loopback port and drives each endpoint with a Python load generator: asyncio,
`--connections` keep-alive connections on raw sockets, each sending one request and
reading the whole response before the next (a closed loop, so latency is what a client
waits at that concurrency). The first 5 % of each run is warm-up and not counted; each
run stops after `--n` timed requests or 30 s. Requests carry a browser user agent and
the per-IP throttle stays on (its limit raised above the load), so every hit pays for
its cache `incr` and its INSERT.

Afterwards the database must hold exactly one DeliveryEvent per successful request.
The last line printed is one JSON object.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RPS = 1000
TARGET_P99_MS = 50
MESSAGES = 200
WARMUP_SHARE = 0.05
RUN_SECONDS_MAX = 30
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
HTML = """<html><body><p>Hello {{ contact.first_name }},</p>
<p><a href="https://shop.example.com/spring">Spring picks</a> · <a href="https://shop.example.com/account">Your account</a></p>
</body></html>"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="timed requests per endpoint (default 5000)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (SQLite file, gunicorn log)")
    args = parser.parse_args()
    if not 100 <= args.n <= 1_000_000:
        parser.error("--n must be between 100 and 1000000")
    if not 1 <= args.connections <= 256:
        parser.error("--connections must be between 1 and 256")
    return args


def free_port() -> int:
    """A free port in 18000-18999 (the machine's convention for servers we start)."""
    for port in random.sample(range(18000, 19000), 1000):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18000-18999")


def environment(workdir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        MAILROOM_SQLITE_PATH=str(workdir / "bench.sqlite3"),
        SECRET_KEY=secrets.token_urlsafe(50),
        MAILROOM_BASE_URL=f"http://127.0.0.1:{port}",
        MAILROOM_KICK_CLUSTER="0",
        MAILROOM_TRACKING_RATE_LIMIT=str(10**9),  # the throttle runs (one incr a hit) but never refuses
        MAILROOM_LOG_LEVEL="WARNING",
        MAILROOM_SENDER_ADDRESS="Mailroom SAS, 1 rue de la Poste, 75001 Paris",
        PYTHONPATH=str(REPO),
    )
    return env


def prepare(env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Migrate, send the emails, return the open and click paths found in them."""
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    import django

    django.setup()
    # Imported after setup_django(): the settings read this run's database from the environment.
    from django.core.management import call_command

    from messaging.consent import subscribe
    from messaging.contacts import create_contact
    from messaging.delivery.outbox import enqueue_message
    from messaging.delivery.sending import send_due_messages
    from messaging.models import SandboxMessage, Topic

    call_command("migrate", verbosity=0, interactive=False)
    topic = Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING)
    for index in range(MESSAGES):
        contact = create_contact(actor=None, email=f"reader{index}@example.com", first_name=f"Reader {index}")
        subscribe(actor=None, contact=contact, topic=topic)
        enqueue_message(channel="email", contact=contact, topic=topic, subject="Spring", html=HTML)
    send_due_messages()
    base = env["MAILROOM_BASE_URL"]
    opens, clicks = [], []
    for html in SandboxMessage.objects.values_list("body_html", flat=True):
        opens += [url.removeprefix(base) for url in re.findall(re.escape(base) + r"/o/[^\"]+\.gif", html)]
        clicks += [url.removeprefix(base) for url in re.findall(re.escape(base) + r"/t/\d+/[^\"]+/", html)]
    if len(opens) != MESSAGES or len(clicks) != 2 * MESSAGES:
        raise SystemExit(f"expected {MESSAGES} pixels and {2 * MESSAGES} links, found {len(opens)} and {len(clicks)}")
    return opens, clicks


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    command = [
        str(REPO / ".venv" / "bin" / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--backlog",
        "512",
        "--error-logfile",
        str(log),
    ]
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop(process)
    raise SystemExit("gunicorn did not answer within 30 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def server_cpu_seconds(master: int) -> float:
    """User + system CPU of gunicorn's master and workers so far (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [master]
    with contextlib.suppress(OSError):
        pids += [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


# --- the load generator ------------------------------------------------------------------------
async def _connection(port: int, requests: list[bytes], budget: dict, results: list, deadline: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        index = 0
        while budget["left"] > 0 and time.perf_counter() < deadline:
            budget["left"] -= 1
            request = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            if length and int(length.group(1)):
                await reader.readexactly(int(length.group(1)))
            results.append((time.perf_counter() - started, status))
    finally:
        writer.close()


async def _drive(port: int, paths: list[str], total: int, connections: int) -> tuple[list, float]:
    random.shuffle(paths)
    host = f"127.0.0.1:{port}"
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n".encode()
        for path in paths
    ]
    results: list = []
    budget = {"left": total}
    started = time.perf_counter()
    deadline = started + RUN_SECONDS_MAX
    await asyncio.gather(*[_connection(port, requests[i::connections] or requests, budget, results, deadline) for i in range(connections)])
    return results, time.perf_counter() - started


def load(port: int, paths: list[str], n: int, connections: int, expected: int, master: int) -> dict:
    warmup = max(int(n * WARMUP_SHARE), connections * 4)
    asyncio.run(_drive(port, list(paths), warmup, connections))
    cpu_before = server_cpu_seconds(master)
    results, elapsed = asyncio.run(_drive(port, list(paths), n, connections))
    cpu = server_cpu_seconds(master) - cpu_before
    latencies = sorted(seconds * 1000 for seconds, _status in results)
    good = sum(1 for _seconds, status in results if status == expected)
    return {
        "requests": len(results),
        "warmup": warmup,
        "ok": good,
        "errors": len(results) - good,
        "rps": len(results) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_ms": latencies[-1],
        "seconds": elapsed,
        # What one request costs the server, whatever else the machine is doing; cores /
        # this is the rate the server could reach with the CPU to itself.
        "cpu_ms": cpu * 1000 / len(results) if results else 0.0,
    }


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-bench-tracking-"))
    port = free_port()
    env = environment(workdir, port)
    process = None
    try:
        started = time.perf_counter()
        opens, clicks = prepare(env)
        print(f"sent {MESSAGES} emails through the sandbox in {time.perf_counter() - started:.1f} s", flush=True)
        process = start_gunicorn(env, port, args.workers, args.threads, workdir / "gunicorn.log")
        load_avg = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
        print(
            f"gunicorn on 127.0.0.1:{port}: {args.workers} workers x {args.threads} threads; "
            f"{args.connections} keep-alive connections; {os.cpu_count()} cores, load {load_avg}",
            flush=True,
        )
        figures = {}
        for name, paths, expected in (("open", opens, 200), ("click", clicks, 302)):
            figures[name] = load(port, paths, args.n, args.connections, expected, process.pid)
            f = figures[name]
            print(
                f"{name:5}: {f['rps']:7.0f} req/s  p50 {f['p50_ms']:5.1f} ms  p99 {f['p99_ms']:5.1f} ms  "
                f"max {f['max_ms']:6.1f} ms  server CPU {f['cpu_ms']:.2f} ms/request  ({f['requests']} requests in {f['seconds']:.1f} s, {f['errors']} not {expected})",
                flush=True,
            )
        stop(process)
        process = None

        # Imported after setup_django(): the settings read this run's database from the environment.
        from messaging.models import DeliveryEvent

        recorded = {kind: DeliveryEvent.objects.filter(kind=kind).count() for kind in ("opened", "clicked")}
        expected_events = {
            "opened": figures["open"]["ok"] + figures["open"]["warmup"],
            "clicked": figures["click"]["ok"] + figures["click"]["warmup"],
        }
        one_insert_each = recorded == expected_events
        print(f"events recorded: {recorded} (expected {expected_events}: {'ok' if one_insert_each else 'MISMATCH'})", flush=True)
        print(
            json.dumps(
                {
                    "benchmark": "tracking",
                    "value": round(figures["open"]["rps"], 1),
                    "unit": "req/s",
                    "n": args.n,
                    "target": TARGET_RPS,
                    "click_rps": round(figures["click"]["rps"], 1),
                    "open_p50_ms": round(figures["open"]["p50_ms"], 2),
                    "open_p99_ms": round(figures["open"]["p99_ms"], 2),
                    "click_p50_ms": round(figures["click"]["p50_ms"], 2),
                    "click_p99_ms": round(figures["click"]["p99_ms"], 2),
                    "p99_target_ms": TARGET_P99_MS,
                    "open_server_cpu_ms": round(figures["open"]["cpu_ms"], 3),
                    "click_server_cpu_ms": round(figures["click"]["cpu_ms"], 3),
                    "load_average": round(os.getloadavg()[0], 1),
                    "errors": figures["open"]["errors"] + figures["click"]["errors"],
                    "events_match_requests": one_insert_each,
                    "connections": args.connections,
                    "workers": args.workers,
                    "threads": args.threads,
                    "database": "sqlite",
                }
            ),
            flush=True,
        )
        return 0 if one_insert_each else 1
    finally:
        if process is not None:
            stop(process)
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
