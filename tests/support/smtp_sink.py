"""A real SMTP server on loopback (aiosmtpd) that records what it accepts.

In-process for unit tests (`SMTPSink` context manager), or as a subprocess for the
reliability tests and benchmarks: `python -m tests.support.smtp_sink --port 2525
--log ids.txt` appends each accepted Message-ID to a file, one per line.

Recipients can be made to fail: an address containing "soft-fail" gets 451, one
containing "hard-fail" gets 550, so retries and bounces are exercised for real. `--delay`
makes it a slow server (seconds per message, before it answers DATA). It announces
PIPELINING (RFC 2920) like production MTAs do, so the pipelined SMTP path is the one
tested; `pipelining=False` makes it a server without it, `eight_bit=False` one without
8BITMIME (RFC 6152).
"""

import argparse
import asyncio
import re
import signal
import socket
import threading

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RecordingHandler:
    def __init__(self, log_path: str | None = None, delay: float = 0.0, *, pipelining: bool = True, eight_bit: bool = True):
        self.delay = delay
        self.pipelining = pipelining
        self.eight_bit = eight_bit
        self.messages: list[bytes] = []
        self.mail_options: list[list[str]] = []  # each accepted message's MAIL FROM parameters
        self.message_ids: list[str] = []
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115 - lives as long as the server

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # aiosmtpd leaves this to a handler that answers EHLO
        if self.pipelining:  # aiosmtpd reads pipelined commands in order anyway
            responses.insert(-1, "250-PIPELINING")
        if not self.eight_bit:
            responses = [line for line in responses if "8BITMIME" not in line]
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "hard-fail" in address:
            return "550 5.1.1 No such user here"
        if "soft-fail" in address:
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        data = envelope.original_content or envelope.content
        found = MESSAGE_ID.search(data)
        message_id = found.group(1).decode() if found else ""
        with self.lock:
            if self.log:
                self.log.write(message_id + "\n")
            else:
                self.messages.append(data)
                self.message_ids.append(message_id)
                self.mail_options.append(list(envelope.mail_options))
        return "250 Message accepted for delivery"


class SMTPSink:
    def __init__(
        self, port: int | None = None, *, pipelining: bool = True, eight_bit: bool = True, handler: RecordingHandler | None = None
    ):
        self.port = port or free_port()
        self.handler = handler or RecordingHandler(pipelining=pipelining, eight_bit=eight_bit)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "SMTPSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[bytes]:
        return self.handler.messages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering each DATA")
    args = parser.parse_args()
    controller = Controller(RecordingHandler(args.log, args.delay), hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"smtp sink listening on 127.0.0.1:{args.port}", flush=True)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
