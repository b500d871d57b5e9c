"""The send path's fast parts against a real SMTP server on loopback: pipelined
transactions (RFC 2920) with every failure mapped to its own message, the smtplib
fallback for servers without PIPELINING, the MIME and signed links the fast builder
writes, and urgent messages recorded before the rest of their batch is sent."""

import email
import email.header
import email.policy
import re

import pytest
from django.core import signing

from messaging.consent import subscribe
from messaging.delivery import sending
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import message_from_token
from messaging.models import DeliveryAttempt, OutboxMessage, Provider, SandboxMessage, Suppression
from messaging.providers.email import smtp
from messaging.providers.email.headers import encoded_words
from messaging.providers.email.smtp import SMTPSession, dot_stuffed
from messaging.tokens import reveal_id
from tests.support.smtp_sink import RecordingHandler, SMTPSink

pytestmark = pytest.mark.django_db

Status = OutboxMessage.Status


@pytest.fixture(autouse=True)
def _quiet_cluster(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
    settings.MAILROOM_FAILOVER_AFTER = 99  # failures here are per message, never the provider's


class PickyHandler(RecordingHandler):
    """Also refuses some senders at MAIL FROM and some contents at the end of DATA."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if "refused-sender" in address:
            return "553 5.7.1 Sender address rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if b"REJECT-ME" in (envelope.original_content or envelope.content):
            return "554 5.6.0 Message content rejected"
        return await super().handle_DATA(server, session, envelope)


def provider_for(sink: SMTPSink) -> Provider:
    return Provider.objects.create(name="Sink", channel="email", kind="smtp", priority=10, config={"host": "127.0.0.1", "port": sink.port})


def email_to(to: str, **kwargs) -> OutboxMessage:
    defaults = {"channel": "email", "to": to, "subject": "Hello", "text": "Hi there", "html": "<p>Hi there</p>"}
    return enqueue_message(**(defaults | kwargs))


def refreshed(message: OutboxMessage) -> OutboxMessage:
    message.refresh_from_db()
    return message


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "smtplib"])
def test_each_message_of_a_batch_gets_its_own_outcome(pipelining):
    with SMTPSink(handler=PickyHandler(pipelining=pipelining)) as sink:
        provider = provider_for(sink)
        with SMTPSession(provider) as session:
            assert session.pipelining == pipelining
        messages = [
            email_to("first@example.com"),
            email_to("soft-fail@example.com"),
            email_to("hard-fail@example.com"),
            email_to("content@example.com", text="REJECT-ME"),
            email_to("sender@example.com", from_address="News <refused-sender@example.com>"),
            email_to("last@example.com"),
        ]
        assert send_due_messages() == len(messages)
        first, soft, hard, content, sender, last = (refreshed(m) for m in messages)
        assert first.status == last.status == Status.SENT
        assert soft.status == Status.QUEUED and soft.error.startswith("451")
        assert hard.status == Status.FAILED and hard.error.startswith("550")
        assert Suppression.objects.filter(address="hard-fail@example.com", reason="hard_bounce").exists()
        # Refused content or sender: permanent, but the recipient's address is not to blame.
        assert content.status == Status.FAILED and content.error.startswith("554")
        assert sender.status == Status.FAILED and sender.error.startswith("553")
        assert not Suppression.objects.filter(address__in=["content@example.com", "sender@example.com"]).exists()
        # The connection stayed in step: exactly the two good messages arrived, in order.
        assert sink.handler.message_ids == [first.message_id, last.message_id]
        assert DeliveryAttempt.objects.filter(outcome="sent").count() == 2


def test_a_pipelined_batch_reuses_one_connection_and_announces_the_size():
    handler = RecordingHandler()
    sessions = []

    async def handle_MAIL(server, session, envelope, address, mail_options):
        sessions.append(id(session))
        envelope.mail_from, envelope.mail_options = address, mail_options
        return "250 OK"

    handler.handle_MAIL = handle_MAIL
    with SMTPSink(handler=handler) as sink:
        provider_for(sink)
        for n in range(5):
            email_to(f"user{n}@example.com")
        assert send_due_messages() == 5
    assert len(sink.messages) == 5 and len(set(sessions)) == 1


def test_dot_stuffing_keeps_lines_that_start_with_a_dot():
    with SMTPSink() as sink:
        provider_for(sink)
        message = email_to("ada@example.com", text=".\n.hidden line\n..two dots", html="")
        send_due_messages()
        assert refreshed(message).status == Status.SENT
        parsed = email.message_from_bytes(sink.messages[0], policy=email.policy.default)
        assert parsed.get_content().splitlines() == [".", ".hidden line", "..two dots"]
    assert dot_stuffed(b".a\r\n.b\r\nc") == b"..a\r\n..b\r\nc\r\n.\r\n"


def test_non_ascii_subjects_and_names_are_encoded_words_that_decode_back():
    subject = "Zoë, votre sélection de printemps est arrivée — jusqu’à −20 % sur les outils de jardin 🌷"
    with SMTPSink() as sink:
        provider_for(sink)
        email_to("zoe@example.com", subject=subject, from_address="Équipe Mailroom <news@example.com>")
        send_due_messages()
        raw = sink.messages[0]
    head = raw.split(b"\r\n\r\n", 1)[0]
    subject_lines = re.search(rb"^Subject: .*?\r\n(?=[^ ])", head, re.MULTILINE | re.DOTALL).group(0).split(b"\r\n")[:-1]
    assert head.isascii() and len(subject_lines) > 1 and all(len(line) <= 78 for line in subject_lines)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Équipe Mailroom"
    assert parsed["From"].addresses[0].addr_spec == "news@example.com"
    # A word never splits a UTF-8 character, whatever the length.
    for text in ["é" * 50, "a" + "🌷" * 30, "x" * 38 + "é"]:
        assert str(email.header.make_header(email.header.decode_header(encoded_words(text)))) == text


def test_a_header_value_never_starts_a_header_of_its_own():
    with SMTPSink() as sink:
        provider_for(sink)
        email_to("ada@example.com", headers={"X-Campaign": "spring\r\nBcc: mallory@example.com"})
        send_due_messages()
        parsed = email.message_from_bytes(sink.messages[0], policy=email.policy.default)
    assert parsed["X-Campaign"] == "spring Bcc: mallory@example.com" and parsed["Bcc"] is None


def test_marketing_links_are_signed_tokens_django_accepts(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    with SMTPSink() as sink:
        provider_for(sink)
        message = enqueue_message(
            channel="email",
            contact=contact,
            topic=newsletter,
            subject="News",
            text="Hello",
            html='<p><a href="https://example.com/spring">Spring</a></p>',
        )
        send_due_messages()
        parsed = email.message_from_bytes(sink.messages[0], policy=email.policy.default)
    header_url = parsed["List-Unsubscribe"].strip("<>")
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert header_url in html and header_url in text  # one link, header and footer alike
    token = re.search(r"/u/([^/]+)/", header_url).group(1)
    concealed = signing.loads(token, salt="mailroom.unsubscribe")["m"]  # Django's own signing reads it
    assert reveal_id(concealed) == message.pk and concealed != str(message.pk)  # the id is not in clear
    click_token = re.search(r"/t/\d+/([^/]+)/", html).group(1)
    assert message_from_token(click_token) == message.pk


def test_failing_over_mid_batch_abandons_the_envelope_already_on_the_wire(settings):
    settings.MAILROOM_FAILOVER_AFTER = 3
    with SMTPSink() as sink:
        provider_for(sink)
        Provider.objects.create(name="Backup", channel="email", kind="sandbox", priority=20)
        for n in range(3):
            email_to(f"soft-fail-{n}@example.com")
        fine = [email_to(f"fine{n}@example.com") for n in range(2)]
        send_due_messages()
    # fine0's envelope went out with the third failure; the session closed without its
    # data, so only the backup delivered it: once.
    assert sink.messages == []
    assert {(m.status, m.provider.name) for m in map(refreshed, fine)} == {(Status.SENT, "Backup")}


def test_an_urgent_message_is_recorded_before_the_campaign_in_its_batch_is_sent(monkeypatch):
    events = []
    real_record = sending.record_outcomes

    def record(outcomes):
        events.append(("record", sorted(o.message.to_address for o in outcomes)))
        real_record(outcomes)

    monkeypatch.setattr(sending, "record_outcomes", record)
    with SMTPSink() as sink:
        provider_for(sink)
        real_send = SMTPSession.send_ahead
        monkeypatch.setattr(SMTPSession, "send_ahead", lambda self, m, f: events.append(("send", m.to_address)) or real_send(self, m, f))
        bulk = [email_to(f"bulk{n}@example.com", priority=OutboxMessage.Priority.BULK) for n in range(3)]
        receipt = email_to("receipt@example.com", priority=OutboxMessage.Priority.TRANSACTIONAL)
        assert send_due_messages() == 4
    assert events == [
        ("send", "receipt@example.com"),
        ("record", ["receipt@example.com"]),
        *[("send", m.to_address) for m in bulk],
        ("record", [m.to_address for m in bulk]),
    ]
    assert {refreshed(m).status for m in [receipt, *bulk]} == {Status.SENT}
    assert DeliveryAttempt.objects.filter(outcome="sent").count() == 4


def test_an_urgent_message_recorded_early_is_already_in_the_sandbox(monkeypatch):
    """Given a receipt claimed with bulk mail on the sandbox provider, when the receipt's
    outcome is recorded before the rest of the batch, then its sandbox copy is stored
    first: nothing reads as sent that the provider does not hold (found by the automation
    restart test, which counted the sandbox the moment the outbox said sent)."""

    Provider.objects.create(name="Sandbox", channel="email", kind="sandbox", priority=10)
    stored_when_recorded = []
    real_record = sending.record_outcomes

    def record(outcomes):
        addresses = [o.message.to_address for o in outcomes]
        stored_when_recorded.append(SandboxMessage.objects.filter(to_address__in=addresses).count() == len(addresses))
        real_record(outcomes)

    monkeypatch.setattr(sending, "record_outcomes", record)
    [email_to(f"bulk{n}@example.com", priority=OutboxMessage.Priority.BULK) for n in range(3)]
    email_to("receipt@example.com", priority=OutboxMessage.Priority.TRANSACTIONAL)
    assert send_due_messages() == 4
    assert stored_when_recorded == [True, True]
    assert SandboxMessage.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_sent_while_the_database_is_down_is_recorded_once_it_is_back(monkeypatch, settings):
    """Given a batch the SMTP server accepted, when the database refuses the lease renewals
    and the first writes of the outcomes, then the worker keeps the outcomes and records
    them when the database answers again: nothing stays leased, to be sent a second time."""
    from django.db import OperationalError, connection

    settings.MAILROOM_LEASE_SECONDS = 0  # renew the lease after every message
    monkeypatch.setattr(sending.time, "sleep", lambda seconds: None)
    refused = {"renewal": 2, "record": 2}

    def database_down(execute, sql, params, many, context):
        kind = "renewal" if 'SET "lease_until"' in sql else "record" if re.search(r"SET status = (%s|v\.status), error", sql) else ""
        if kind and refused[kind]:
            refused[kind] -= 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    with SMTPSink() as sink:
        provider_for(sink)
        messages = [email_to(f"down{n}@example.com", priority=OutboxMessage.Priority.BULK) for n in range(3)]
        with connection.execute_wrapper(database_down):
            assert send_due_messages() == 3
    assert refused == {"renewal": 0, "record": 0}
    assert len(sink.messages) == 3
    assert {(m.status, m.lease_owner) for m in map(refreshed, messages)} == {(Status.SENT, "")}
    assert DeliveryAttempt.objects.filter(outcome="sent").count() == 3


def test_a_batch_composed_ahead_sends_each_message_as_composing_it_alone_would(monkeypatch):
    # given a batch larger than what the session composes ahead at a time
    monkeypatch.setattr(smtp, "AHEAD_MESSAGES", 3)
    events = []
    real_compose, real_send = smtp.compose, SMTPSession.send_ahead
    monkeypatch.setattr(
        smtp,
        "compose",
        lambda message, provider, **options: events.append(("compose", message.pk)) or real_compose(message, provider, **options),
    )
    monkeypatch.setattr(SMTPSession, "send_ahead", lambda self, m, f: events.append(("send", m.pk)) or real_send(self, m, f))
    with SMTPSink() as sink:
        provider = provider_for(sink)
        messages = [email_to(f"reader{n}@example.com", subject=f"Issue {n}", text=f"Hello {n}") for n in range(7)]
        assert send_due_messages() == 7
    sent = [refreshed(m) for m in messages]
    # then every message went out once, in order, each composed once
    assert {m.status for m in sent} == {Status.SENT}
    assert sink.handler.message_ids == [m.message_id for m in sent]
    assert sorted(pk for event, pk in events if event == "compose") == sorted(m.pk for m in sent)
    # composed three at a time, ahead of their sending
    ids = [m.pk for m in sent]
    assert events[:5] == [("send", ids[0]), ("compose", ids[0]), ("compose", ids[1]), ("compose", ids[2]), ("send", ids[1])]
    # and what arrived is what composing each message alone gives (the boundary and the
    # Date aside, which differ from one composition to the next)
    for raw, message in zip(sink.messages, sent, strict=True):
        alone = email.message_from_bytes(real_compose(message, provider).raw, policy=email.policy.default)
        arrived = email.message_from_bytes(raw, policy=email.policy.default)
        assert arrived.get_content_type() == alone.get_content_type() == "multipart/alternative"
        for header in ("From", "To", "Subject", "Message-ID", "MIME-Version"):
            assert arrived[header] == alone[header]
        assert [unsigned(part.get_content()) for part in arrived.iter_parts()] == [
            unsigned(part.get_content()) for part in alone.iter_parts()
        ]


def unsigned(content: str) -> str:
    """The content with each signed token's timestamp and signature masked: composed a
    second apart, the same link carries another timestamp (its payload stays compared)."""
    return re.sub(r"([A-Za-z0-9_.-]+):[0-9A-Za-z]+:[A-Za-z0-9_-]{43}", r"\1:<signed>", content)


def test_a_message_that_cannot_be_composed_ahead_fails_alone_in_its_turn(monkeypatch):
    # given a batch where one message's composition raises (a bug, odd input)
    monkeypatch.setattr(smtp, "AHEAD_MESSAGES", 10)
    real_compose = smtp.compose

    def compose(message, provider, **options):
        if message.to_address == "broken@example.com":
            raise ValueError("cannot compose this one")
        return real_compose(message, provider, **options)

    monkeypatch.setattr(smtp, "compose", compose)
    with SMTPSink() as sink:
        provider_for(sink)
        before = [email_to(f"before{n}@example.com") for n in range(2)]
        broken = email_to("broken@example.com")
        after = [email_to(f"after{n}@example.com") for n in range(2)]
        assert send_due_messages() == 5
    # then it alone is kept for a retry, with its own error; the others went out, in order, once
    broken = refreshed(broken)
    assert broken.status == Status.QUEUED and "cannot compose this one" in broken.error
    good = [refreshed(m) for m in before + after]
    assert {m.status for m in good} == {Status.SENT}
    assert sink.handler.message_ids == [m.message_id for m in good]
