"""Where the CPU of sending goes: the send path in-process, under cProfile.

    .venv/bin/python bench/_profile_send.py [--n 5000] [--batch 500] [--top 15] [--no-profile]

Setup is never timed. The campaign of bench/send_throughput.py (N personalised HTML+text
marketing emails with tracked links, the unsubscribe header and footer added at send
time) on a fresh temporary SQLite database, an SMTP provider pointing at an SMTP sink
subprocess (Postfix's smtp-sink when installed, else the aiosmtpd sink). Then
`send_due_messages` runs in this process, as a drain task runs in a cluster worker, and
the CPU time of this process (`time.process_time`: the sink's is not counted) is divided
by the messages sent. Without --no-profile it runs under cProfile and prints the top
functions by own and by cumulative time, in ms per message (cProfile roughly doubles the
figure: compare profiles with profiles and `cpu_ms_per_msg` runs with each other).

Named with a leading underscore: bench/run_all.py skips it (a diagnosis tool, not a
benchmark with a target). The last line printed is one JSON object.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from _common import remove_workdir, say
from send_throughput import SMTP_SINK, Sink, seed_mailroom, setup_mailroom


def top(stats: pstats.Stats, key: str, count: int, sent: int) -> list[dict]:
    rows = []
    for (filename, line, name), (_calls, ncalls, tottime, cumtime, _callers) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({name})" if line else name,
                "calls_per_msg": round(ncalls / sent, 2),
                "own_ms_per_msg": round(1000 * tottime / sent, 4),
                "cum_ms_per_msg": round(1000 * cumtime / sent, 4),
            }
        )
    rows.sort(key=lambda row: row[key], reverse=True)
    return rows[:count]


def print_table(title: str, rows: list[dict]) -> None:
    say(title)
    say(f"  {'own ms/msg':>10} {'cum ms/msg':>10} {'calls/msg':>9}  function")
    for row in rows:
        say(f"  {row['own_ms_per_msg']:>10.4f} {row['cum_ms_per_msg']:>10.4f} {row['calls_per_msg']:>9}  {row['function']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500, help="messages per claimed batch (MAILROOM_SEND_BATCH)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--no-profile", action="store_true", help="CPU per message without cProfile's overhead")
    parser.add_argument("--dump", default="", help="also write the profile here (pstats format, for snakeviz or pstats)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mailroom-profile-send-"))
    sink = Sink("smtp-sink" if Path(SMTP_SINK).exists() else "aiosmtpd", workdir, "profile")
    try:
        setup_mailroom(workdir / "mailroom.sqlite3")
        os.environ["MAILROOM_KICK_CLUSTER"] = "0"
        from django.utils import timezone  # after django.setup(): the settings read this run's database

        from messaging.delivery.sending import send_due_messages
        from messaging.models import OutboxMessage

        campaign = seed_mailroom(n=args.n, port=sink.port)
        campaign.update(next_attempt_at=timezone.now())
        say(f"seeded {args.n} messages; sink {sink.kind} on 127.0.0.1:{sink.port}")
        profiler = None if args.no_profile else cProfile.Profile(time.process_time)  # CPU, not waiting on the sink
        cpu, wall, times = time.process_time(), time.perf_counter(), os.times()
        if profiler:
            profiler.enable()
        handled = send_due_messages(channel="email", limit=args.batch)
        if profiler:
            profiler.disable()
        cpu, wall, after = time.process_time() - cpu, time.perf_counter() - wall, os.times()
        sent = campaign.filter(status=OutboxMessage.Status.SENT).count()
        deadline = time.monotonic() + 30
        while sink.accepted() < sent and time.monotonic() < deadline:
            time.sleep(0.1)
        result = {
            "benchmark": "profile_send",
            "value": round(1000 * cpu / max(sent, 1), 4),
            "unit": "ms CPU per message (in-process send path" + ("" if args.no_profile else ", under cProfile") + ")",
            "n": args.n,
            "sent": sent,
            "handled": handled,
            "sink_accepted": sink.accepted(),
            "user_ms_per_msg": round(1000 * (after.user - times.user) / max(sent, 1), 4),
            "system_ms_per_msg": round(1000 * (after.system - times.system) / max(sent, 1), 4),
            "wall_msg_per_s": round(sent / wall, 1),
        }
        if profiler:
            stats = pstats.Stats(profiler, stream=io.StringIO())
            if args.dump:
                stats.dump_stats(args.dump)
            result["top_own"] = top(stats, "own_ms_per_msg", args.top, max(sent, 1))
            result["top_cumulative"] = top(stats, "cum_ms_per_msg", args.top, max(sent, 1))
            print_table("top by own time:", result["top_own"])
            print_table("top by cumulative time:", result["top_cumulative"])
        print(json.dumps(result), flush=True)
    finally:
        sink.stop()
        remove_workdir(workdir, keep=False)


if __name__ == "__main__":
    if str(Path(__file__).resolve().parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
