"""Sending over SMTP: one connection per batch, pipelined (RFC 2920) when the server offers it."""

import contextlib
import smtplib
from dataclasses import dataclass

from messaging.models import OutboxMessage
from messaging.providers.base import ProviderError, Result, Session, permanent, secret, sent, transient
from messaging.providers.email.mime import compose

HARD_BOUNCE_CODES = {550, 551, 553, 554}
# Composed ahead of sending, at most this many messages or bytes at a time (see SMTPSession.begin).
AHEAD_MESSAGES = 50
AHEAD_BYTES = 4 * 1024 * 1024


def _classify(code: int, text: str, *, recipient: bool) -> Result:
    response = f"{code} {text}"
    if code >= 500:
        return permanent(response, hard_bounce=recipient and code in HARD_BOUNCE_CODES)
    return transient(response)


def _reply_text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload with its terminator: smtplib's `data()` transparency (RFC 5321
    4.5.2: a line starting with "." gets another), a final CRLF, then "."."""
    if raw.startswith(b"."):
        raw = b"." + raw
    raw = raw.replace(b"\n.", b"\n..")
    return raw + (b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n")


@dataclass(slots=True)
class Prepared:
    """A message ready for the wire."""

    raw: bytes
    envelope_from: str
    recipient: str
    message_id: str
    eight_bit: bool = False  # composed for a server announcing 8BITMIME: sent with BODY=8BITMIME

    @property
    def pipelinable(self) -> bool:
        return self.envelope_from.isascii() and self.recipient.isascii()  # else SMTPUTF8: smtplib's path


class SMTPSession(Session):
    """One SMTP connection per batch; reconnects once if the server drops it.

    When the server announces PIPELINING (RFC 2920; unless the provider's config says
    "pipelining": false), a message costs one round trip: its MAIL FROM, RCPT TO and DATA
    go out in the same write as the previous message's content, so one read returns the
    previous message's final reply and this one's three envelope replies. Every reply is
    read, in order, before a result is returned, so each message gets its own outcome (a
    refused recipient or content fails that message only). Without PIPELINING, smtplib's
    `sendmail` does the transaction."""

    def __enter__(self) -> "SMTPSession":
        self.connection = None
        self.eight_bit = False  # until the server's EHLO says 8BITMIME
        self.ahead: tuple[OutboxMessage, Prepared] | None = None  # its envelope is on the wire, replies unread
        self.upcoming: list[OutboxMessage] = []
        self.positions: dict[int, int] = {}  # id(message) -> its place in `upcoming`
        self.composed: dict[int, tuple[OutboxMessage, Prepared]] = {}
        self._connect()
        return self

    def begin(self, messages: list[OutboxMessage]) -> None:
        """Compose the batch's messages a few dozen at a time ahead of sending them
        (AHEAD_MESSAGES, at most AHEAD_BYTES). The same composition, in a tight loop
        instead of between two socket round trips: measured in bench/_profile_send.py,
        composing one message cost about 0.17 ms CPU interleaved with the SMTP exchange
        and about half that in a loop (the interpreter's and the CPU's caches stay warm)."""
        self.upcoming = messages
        self.positions = {id(message): index for index, message in enumerate(messages)}
        self.composed = {}

    def _connect(self) -> None:
        config = self.provider.config
        host, port = config.get("host", "127.0.0.1"), int(config.get("port", 25))
        try:
            factory = smtplib.SMTP_SSL if config.get("ssl") else smtplib.SMTP
            connection = factory(host, port, timeout=float(config.get("timeout", 30)))
            if config.get("starttls") and not config.get("ssl"):
                connection.starttls()
            if config.get("username"):
                connection.login(config["username"], secret(self.provider, "password_secret"))
            connection.ehlo_or_helo_if_needed()
        except smtplib.SMTPAuthenticationError as error:
            raise ProviderError(f"SMTP login refused: {error.smtp_code} {error.smtp_error!r}", permanent=True) from error
        except (OSError, smtplib.SMTPException) as error:
            raise ProviderError(f"SMTP {host}:{port} unreachable: {error}") from error
        self.connection = connection
        self.pipelining = bool(connection.does_esmtp and connection.has_extn("pipelining") and config.get("pipelining", True))
        self.announces_size = bool(connection.does_esmtp and connection.has_extn("size"))
        self.eight_bit = bool(connection.does_esmtp and connection.has_extn("8bitmime"))

    def prepare(self, message: OutboxMessage) -> Prepared:
        found = self.composed.pop(id(message), None)
        if found is not None and found[0] is message and found[1].eight_bit <= self.eight_bit:
            return found[1]
        position = self.positions.get(id(message))
        if position is not None and self.upcoming[position] is message:
            self._compose_ahead(position)
            found = self.composed.pop(id(message), None)
            if found is not None and found[1].eight_bit <= self.eight_bit:  # reconnected to a server without 8BITMIME
                return found[1]
        return self._compose(message)  # not announced, or its composition failed: raises here, in its turn

    def _compose(self, message: OutboxMessage) -> Prepared:
        wire = compose(message, self.provider, eight_bit=self.eight_bit)
        return Prepared(wire.raw, wire.envelope_from, message.to_address, wire.headers["Message-ID"], self.eight_bit)

    def _compose_ahead(self, start: int) -> None:
        """Compose upcoming[start:] until AHEAD_MESSAGES or AHEAD_BYTES; a message whose
        composition fails stops it (composed again in its turn, where the error is its own)."""
        size = 0
        for message in self.upcoming[start : start + AHEAD_MESSAGES]:
            if id(message) in self.composed:
                continue
            try:
                prepared = self._compose(message)
            except Exception:
                return
            self.composed[id(message)] = (message, prepared)
            size += len(prepared.raw)
            if size >= AHEAD_BYTES:
                return

    def _envelope(self, prepared: Prepared) -> bytes:
        size = f" SIZE={len(prepared.raw)}" if self.announces_size else ""
        body = " BODY=8BITMIME" if prepared.eight_bit else ""
        return f"MAIL FROM:<{prepared.envelope_from}>{size}{body}\r\nRCPT TO:<{prepared.recipient}>\r\nDATA\r\n".encode()

    def send(self, message: OutboxMessage) -> Result:
        return self.send_ahead(message, None)

    def send_ahead(self, message: OutboxMessage, following: OutboxMessage | None) -> Result:
        ahead, self.ahead = self.ahead, None
        if ahead is not None and ahead[0] is not message:  # not the message announced: start afresh
            self._drop()
            ahead = None
        if ahead is None:
            if self.connection is None:
                try:
                    self._connect()
                except ProviderError as error:
                    return transient(str(error), broken_session=True)
            prepared = self.prepare(message)
            if not (self.pipelining and prepared.pipelinable):
                return self._sendmail(prepared)
            try:
                self.connection.sock.sendall(self._envelope(prepared))
            except OSError as error:
                self._drop()
                return transient(f"connection lost: {error}", broken_session=True)
        else:
            prepared = ahead[1]
        try:
            return self._complete(message, prepared, following)
        except (TimeoutError, smtplib.SMTPException, OSError) as error:  # out of step with the server: start afresh
            self._drop()
            return transient(f"connection lost: {error}", broken_session=True)

    def _complete(self, message: OutboxMessage, prepared: Prepared, following: OutboxMessage | None) -> Result:
        """Read the envelope's three replies, then send the content (or end the failed
        transaction) together with the following message's envelope, and read the result."""
        connection = self.connection
        mail, rcpt, data = connection.getreply(), connection.getreply(), connection.getreply()
        accepted = mail[0] == 250 and rcpt[0] in (250, 251)
        chain, chained = b"", None
        if following is not None:
            try:
                next_prepared = self.prepare(following)
            except Exception:  # prepared again, and its error reported, when its own turn comes
                next_prepared = None
            if next_prepared is not None and next_prepared.pipelinable:
                chain, chained = self._envelope(next_prepared), (following, next_prepared)
        if accepted and data[0] == 354:
            connection.sock.sendall(dot_stuffed(prepared.raw) + chain)
            self.ahead = chained
            code, text = connection.getreply()
            # After the end of the data the transaction is over whatever the reply: no RSET.
            return (
                sent(f"{code} {_reply_text(text)}", provider_message_id=prepared.message_id)
                if code == 250
                else _classify(code, _reply_text(text), recipient=False)
            )
        # The transaction failed. A server may only say 354 when a recipient was accepted;
        # should it do so anyway, an empty message to nobody ends the data first.
        end_data = b".\r\n" if data[0] == 354 else b""
        connection.sock.sendall(end_data + b"RSET\r\n" + chain)
        self.ahead = chained
        if end_data:
            connection.getreply()
        if connection.getreply()[0] != 250:
            self._drop()
        if mail[0] != 250:
            return _classify(mail[0], _reply_text(mail[1]), recipient=False)
        if not accepted:
            return _classify(rcpt[0], _reply_text(rcpt[1]), recipient=True)
        return _classify(data[0], _reply_text(data[1]), recipient=False)

    def _sendmail(self, prepared: Prepared) -> Result:
        try:
            options = ["BODY=8BITMIME"] if prepared.eight_bit else []
            self.connection.sendmail(prepared.envelope_from, [prepared.recipient], prepared.raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return _classify(code, _reply_text(text), recipient=True)
        except smtplib.SMTPResponseException as error:
            self._reset()
            return _classify(error.smtp_code, _reply_text(error.smtp_error), recipient=False)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            return transient(f"connection lost: {error}", broken_session=True)
        return sent("250 accepted", provider_message_id=prepared.message_id)

    def _reset(self) -> None:
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        self.ahead = None
        try:
            if self.connection is not None:
                self.connection.close()
        finally:
            self.connection = None

    def close(self) -> None:
        self.upcoming, self.positions, self.composed = [], {}, {}
        if self.ahead is not None:
            # A message's envelope is on the wire: closing without its data makes the
            # server drop that transaction, and the message goes on to another session.
            self._drop()
        if self.connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.connection.quit()
            self._drop()
