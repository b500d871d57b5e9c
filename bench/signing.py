"""Benchmark: making and reading one public-link token (messaging.tokens).

    .venv/bin/python bench/signing.py [--n 20000] [--rounds 5]

Run from the repository root. Every email carries a few signed tokens (click, open,
unsubscribe, preferences), made at send time and read on every hit, so a token's cost is
paid per recipient and per request. Three ways of making and reading the same token are
timed in one process, on the same payloads ({"m": <concealed id>}, the public links'
compressed variant included): --n tokens per way, made and read in --rounds slices taken
in turn, so that load on the machine falls on all three alike; each way's fastest slice
counts (the least disturbed by other processes on the two cores):

- `TokenService` (messaging.tokens): Django's TimestampSigner with the salted HMAC key
  derived once per salt and key (CachedKeySigner);
- Django itself: `signing.dumps` / `signing.loads` (the key derived on every call);
- the hand-written signer the project used before (FastSigner: its own base64, JSON and
  HMAC code, kept below as it was so the comparison can be re-run).

All three must make the same token byte for byte (checked first). No database is used;
DATABASE_URL is ignored. The last line printed is one JSON object, e.g.
{"benchmark": "signing", "value": 9.1, "unit": "µs", "n": 20000, "peer": "django.core.signing", ...}
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

from django.core import signing  # reads no setting on import

ROOT = Path(__file__).resolve().parent.parent
# One make + one read, µs. An email makes about five tokens (click, open, unsubscribe,
# preferences, view): at this cost they stay near a tenth of the 500 µs a message may
# take at the 2,000 msg/s send target.
TARGET_US = 25.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40_000, help="tokens made and read per way (default 40000)")
    parser.add_argument("--rounds", type=int, default=20, help="slices taken in turn; each way's fastest counts (default 20)")
    args = parser.parse_args()
    args.rounds = max(1, min(args.rounds, args.n))
    return args


def setup_django(workdir: Path) -> None:
    # Everything here must happen before django.setup() reads config.settings.
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["MAILROOM_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()


# --- the former hand-written signer, as it was (make and the read fast path) ----------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class HandWritten:
    def __init__(self, salt: str, *, secret: str, token: type, compress: bool = False):
        self.salt, self.compress, self.token = salt, compress, token
        key = hashlib.sha256((salt + "signer").encode() + secret.encode()).digest()
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def make(self, obj) -> str:
        data = json.dumps(obj, separators=(",", ":")).encode("latin-1")
        value = None
        if self.compress:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                value = "." + _b64(compressed)
        value = f"{value or _b64(data)}:{signing.b62_encode(int(time.time()))}"
        mac = self._mac.copy()
        mac.update(value.encode())
        return f"{value}:{_b64(mac.digest())}"

    def read(self, token: str, max_age: float | None):
        if not isinstance(token, str) or len(token) > 1000 or token.count(":") != 2 or not token.isascii():
            raise ValueError
        value, stamp, signature = token.rsplit(":", 2)
        mac = self._mac.copy()
        mac.update(f"{value}:{stamp}".encode())
        if not hmac.compare_digest(_b64(mac.digest()), signature):
            raise ValueError
        signed_at = signing.b62_decode(stamp)
        data = base64.urlsafe_b64decode(value.lstrip(".") + "=" * (-len(value.lstrip(".")) % 4))
        payload = json.loads(zlib.decompress(data) if value.startswith(".") else data)
        if max_age is not None and time.time() - signed_at > max_age:
            raise ValueError
        return self.token(data=payload, issued_at=datetime.fromtimestamp(signed_at, tz=UTC))


def django_read(token: str, *, salt: str, max_age: float, token_class: type):
    """`signing.loads`, and the Token (payload and when it was signed) that the others return."""
    data = signing.loads(token, salt=salt, max_age=max_age)
    return token_class(data=data, issued_at=datetime.fromtimestamp(signing.b62_decode(token.rsplit(":", 2)[1]), tz=UTC))


def time_pair(make, read, payloads: list) -> tuple[float, float]:
    """µs per make and per read over the payloads."""
    clock = time.perf_counter_ns
    started = clock()
    tokens = [make(p) for p in payloads]
    made = clock()
    for token in tokens:
        read(token)
    read_at = clock()
    return (made - started) / 1e3 / len(payloads), (read_at - made) / 1e3 / len(payloads)


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mailroom-bench-signing-"))
    try:
        setup_django(workdir)
        return run(args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    # after django.setup(): the app's modules need the settings and the app registry
    from django.conf import settings

    from messaging.tokens import Token, TokenService, conceal_id, public_link_seconds

    max_age = public_link_seconds()
    payloads = [{"m": conceal_id(1_000_000 + i)} for i in range(args.n)]
    ways = {}
    for compress, salt in ((False, "mailroom.click"), (True, "mailroom.unsubscribe")):
        service = TokenService(salt, max_age=public_link_seconds, compress=compress)
        former = HandWritten(salt, secret=settings.SECRET_KEY, token=Token, compress=compress)
        ways[("mailroom", compress)] = (service.make, lambda t, s=service: s.read(t).data)
        ways[("django", compress)] = (
            lambda o, s=salt, c=compress: signing.dumps(o, salt=s, compress=c),
            lambda t, s=salt: django_read(t, salt=s, max_age=max_age, token_class=Token).data,
        )
        ways[("hand-written", compress)] = (former.make, lambda t, f=former: f.read(t, max_age).data)
        # the same token, byte for byte, and each reads the others' tokens
        made = {name: make(payloads[0]) for (name, c), (make, _read) in ways.items() if c == compress}
        assert len(set(made.values())) == 1, f"the three ways make different tokens: {made}"
        for (_name, c), (_make, read) in ways.items():
            if c == compress:
                assert all(read(token) == payloads[0] for token in made.values())

    best: dict[tuple, tuple[float, float]] = {}
    size = args.n // args.rounds
    for index in range(args.rounds):
        chunk = payloads[index * size : (index + 1) * size]
        for key, (make, read) in ways.items():
            make_us, read_us = time_pair(make, read, chunk)
            previous = best.get(key, (make_us, read_us))
            best[key] = (min(previous[0], make_us), min(previous[1], read_us))

    for (name, compress), (make_us, read_us) in best.items():
        print(
            f"{name:13s} {'compressed' if compress else 'plain':10s}: make {make_us:6.2f} µs, read {read_us:6.2f} µs, "
            f"both {make_us + read_us:6.2f} µs"
        )
    figures = {
        f"{name}{'_compressed' if compress else ''}": {"sign_us": round(m, 2), "verify_us": round(r, 2)}
        for (name, compress), (m, r) in best.items()
    }
    value = sum(best[("mailroom", False)])
    peer_value = sum(best[("django", False)])
    print(
        json.dumps(
            {
                "benchmark": "signing",
                "value": round(value, 2),
                "unit": "µs",
                "n": args.n,
                "target": TARGET_US,
                "peer": "django.core.signing",
                "peer_value": round(peer_value, 2),
                "ratio": round(peer_value / value, 2),
                "hand_written": round(sum(best[("hand-written", False)]), 2),
                "ways": figures,
                "rounds": args.rounds,
                "load_avg": round(os.getloadavg()[0], 1),
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
