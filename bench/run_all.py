"""Run every benchmark in bench/, print one table and write bench/results.json.

    .venv/bin/python bench/run_all.py [--only render,segment_count] [--quick]

Each benchmark is a script here that prints one JSON object as its last line (see
DESIGN.md); this runner starts each in its own process, one after the other so they do
not compete for the two cores, and collects those lines with the machine they ran on.
`--quick` passes a small `--n` to each, for a smoke run. `--only` re-runs the named ones
and keeps the other benchmarks' last figures in results.json.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
QUICK_N = {
    "import_contacts": 5000,
    "render": 2000,
    "send_throughput": 2000,
    "segment_count": 5000,
    "tracking": 1000,
    "fanout": 5000,
    "public_load": 1000,
    "send_now": 200,
    "signing": 2000,
    "console_scale": 20000,
}
QUICK_EXTRA = {"fanout": ["--postgresql-n", "20000"]}  # its PostgreSQL run has its own size


def benchmarks() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in {"run_all", "postoffice_settings"} and not p.stem.startswith("_"))


# Seconds each benchmark may take; a benchmark that outlives its timeout gets SIGTERM (its
# `finally` blocks stop what it started and drop its temporary databases), then SIGKILL.
# fanout fits the default: SQLite 100k and PostgreSQL 1M (migrate, load, fan out, drop) took
# 128 s at load 3 on 2 cores, and it stops its PostgreSQL child after 600 s itself.
TIMEOUTS = {"console_scale": 2400}  # its first run builds a million-contact database
DEFAULT_TIMEOUT = 900
TERM_GRACE = 60


def run(name: str, quick: bool) -> dict:
    command = [sys.executable, str(BENCH / f"{name}.py")]
    if quick and name in QUICK_N:
        command += ["--n", str(QUICK_N[name])]
    if quick and name in QUICK_EXTRA:
        command += QUICK_EXTRA[name]
    started = time.perf_counter()
    timeout = TIMEOUTS.get(name, DEFAULT_TIMEOUT)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BENCH.parent) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.communicate(timeout=TERM_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
            return {"benchmark": name, "error": [f"timed out after {timeout} s"], "seconds": round(time.perf_counter() - started, 1)}
    elapsed = round(time.perf_counter() - started, 1)
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        return {
            "benchmark": name,
            "error": (stderr or stdout).strip().splitlines()[-1:] or ["no output"],
            "seconds": elapsed,
        }
    result = json.loads(lines[-1])
    result["seconds"] = elapsed
    return result


def verdict(result: dict) -> str:
    if "error" in result:
        return "ERROR"
    value, target = result.get("value"), result.get("target")
    if value is None or target is None:
        return ""
    lower_is_better = result.get("unit", "").split(" ")[0] in ("µs", "ms", "s")  # "ms (p99, …)" too
    return "meets" if (value <= target if lower_is_better else value >= target) else "misses"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    names = [n for n in benchmarks() if not args.only or n in args.only.split(",")]
    results = []
    for name in names:
        print(f"running {name}…", flush=True)
        results.append(run(name, args.quick))
    print()
    print(f"{'benchmark':18s} {'value':>12s} {'unit':8s} {'target':>8s} {'n':>9s} {'peer':>22s} {'ratio':>7s}  verdict")
    for r in results:
        peer = f"{r.get('peer', '')} {r.get('peer_value', '')}".strip()
        print(
            f"{r['benchmark']:18s} {r.get('value', '-')!s:>12s} {r.get('unit', ''):8s} {r.get('target', '')!s:>8s} "
            f"{r.get('n', '')!s:>9s} {peer:>22s} {r.get('ratio', '')!s:>7s}  {verdict(r)}"
        )
        postgresql = r.get("postgresql")
        if isinstance(postgresql, dict):  # the same benchmark's run on a temporary PostgreSQL database
            sub = {"unit": r.get("unit", "")} | postgresql
            value = sub.get("value", "skipped" if "skipped" in sub else "-")
            print(
                f"{'  on postgresql':18s} {value!s:>12s} {sub['unit']:8s} {sub.get('target', '')!s:>8s} "
                f"{sub.get('n', '')!s:>9s} {'':>22s} {'':>7s}  {verdict(sub)}"
            )
    kept = []
    if args.only and (BENCH / "results.json").exists():  # a partial run updates its rows, keeps the others
        previous = json.loads((BENCH / "results.json").read_text())
        kept = [r for r in previous.get("results", []) if r.get("benchmark") not in names]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()],
        },
        "quick": args.quick,
        "results": sorted(kept + results, key=lambda r: r.get("benchmark", "")),
    }
    (BENCH / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {BENCH / 'results.json'}")
    print(
        json.dumps(
            {"benchmark": "run_all", "value": sum(1 for r in results if verdict(r) == "meets"), "unit": "targets met", "n": len(results)}
        )
    )


if __name__ == "__main__":
    main()
