"""An email inbox read over IMAP (issue 17, item 3), against a real dovecot on loopback:
replies reach the inbox's handler and count on the message they answer, bounce reports
(RFC 3464) and complaints (RFC 5965) land on the message they name, each mail once, and
neither a broken server, a wrong password nor a hostile mail loses or blocks anything."""

import logging
from email.utils import formatdate

import pytest

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery.inbound import HANDLERS
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.mailbox import check_imap_settings, poll_email_inbox
from messaging.models import DeliveryEvent, Inbox, InboxMessage, OutboxMessage, Subscription, Suppression
from messaging.schedules import may_run, schedule_functions
from messaging.tasks import poll_email_inboxes
from tests.support.dovecot import PASSWORD, USER, Dovecot
from tests.support.smtp_sink import free_port

pytestmark = pytest.mark.django_db
ADDRESS = "replies@mailroom.test"
HANDLED: list[int] = []


def remember(inbound) -> str:
    """A host app's handler: proves the reply reached the inbox's handler."""
    HANDLED.append(inbound.pk)
    return f"seen {inbound.from_address}"


@pytest.fixture(autouse=True)
def _setup(settings, monkeypatch):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SECRETS = {"IMAP": PASSWORD}
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    monkeypatch.setitem(HANDLERS, f"{__name__}.remember", "test: remember")
    HANDLED.clear()


@pytest.fixture
def server():
    with Dovecot() as running:
        yield running


@pytest.fixture
def inbox(server) -> Inbox:
    return make_inbox(server)


def make_inbox(server: Dovecot, **fields) -> Inbox:
    settings = {
        "name": "Replies",
        "channel": "email",
        "address": ADDRESS,
        "handler": f"{__name__}.remember",
        "imap_host": "127.0.0.1",
        "imap_port": server.port,
        "imap_security": "none",
        "imap_username": USER,
        "imap_password_secret": "IMAP",
    }
    return Inbox.objects.create(**{**settings, **fields})


@pytest.fixture
def ada(newsletter):
    contact = create_contact(actor=None, email="ada@example.com", first_name="Ada")
    subscribe(actor=None, contact=contact, topic=newsletter)
    return contact


def sent_email(contact, subject: str = "Your order", **fields) -> OutboxMessage:
    message = enqueue_message(channel="email", contact=contact, subject=subject, text="Hello Ada", **fields)
    send_due_messages()
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT and message.message_id
    return message


# --- mails as they arrive -----------------------------------------------------------------------
def reply_mail(
    original: OutboxMessage, *, text: str = "Yes please, see you on Monday.", message_id: str = "<reply-1@example.com>", extra: str = ""
) -> bytes:
    return (
        f"From: Ada Lovelace <Ada@Example.com>\r\nTo: {ADDRESS}\r\nSubject: Re: {original.subject}\r\n"
        f"Date: {formatdate()}\r\nMessage-ID: {message_id}\r\nIn-Reply-To: {original.message_id}\r\n"
        f"References: <thread-start@example.com> {original.message_id}\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\n"
        f"> Hello Ada\r\n"
    ).encode()


def postfix_bounce(original: OutboxMessage, *, action: str = "failed", status: str = "5.1.1", full_original: bool = False) -> bytes:
    """What Postfix sends back (bounce(8), RFC 3464): a notice, the delivery status, and the
    original's headers (or, configured so, the whole original)."""
    original_headers = (
        f"Return-Path: <bounces@mailroom.test>\r\nFrom: hello@mailroom.test\r\nTo: {original.to_address}\r\n"
        f"Subject: {original.subject}\r\nMessage-ID: {original.message_id}\r\nDate: {formatdate()}\r\n"
    )
    original_part = (
        f"Content-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n{original_headers}\r\nHello Ada\r\n"
        if full_original
        else f"Content-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n{original_headers}"
    )
    return (
        "Return-Path: <>\r\nX-Original-To: replies@mailroom.test\r\n"
        f"Date: {formatdate()}\r\nFrom: MAILER-DAEMON@mx.mailroom.test (Mail Delivery System)\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nTo: {ADDRESS}\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="4F1B01C0E2.1765069200/mx.mailroom.test"\r\n'
        "Content-Transfer-Encoding: 8bit\r\nMessage-Id: <20261207010000.4F1B01C0E2@mx.mailroom.test>\r\n\r\n"
        "This is a MIME-encapsulated message.\r\n\r\n"
        "--4F1B01C0E2.1765069200/mx.mailroom.test\r\n"
        "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.mailroom.test.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n"
        f"<{original.to_address}>: host mx.example.com[192.0.2.10] said: 550 5.1.1\r\n"
        f"    <{original.to_address}>: Recipient address rejected: User unknown (in reply to RCPT TO command)\r\n\r\n"
        "--4F1B01C0E2.1765069200/mx.mailroom.test\r\n"
        "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.mailroom.test\r\nX-Postfix-Queue-ID: 4F1B01C0E2\r\n"
        f"X-Postfix-Sender: rfc822; bounces@mailroom.test\r\nArrival-Date: {formatdate()}\r\n\r\n"
        f"Final-Recipient: rfc822; {original.to_address}\r\nOriginal-Recipient: rfc822;{original.to_address}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx.example.com\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{original.to_address}>: Recipient address rejected: User unknown\r\n\r\n"
        f"--4F1B01C0E2.1765069200/mx.mailroom.test\r\n{original_part}\r\n"
        "--4F1B01C0E2.1765069200/mx.mailroom.test--\r\n"
    ).encode()


def arf_report(original: OutboxMessage, *, feedback_type: str = "abuse") -> bytes:
    """A feedback-loop complaint as RFC 5965 (section B.1) shows one."""
    return (
        f"From: <abuse@isp.example>\r\nDate: {formatdate()}\r\nSubject: FW: {original.subject}\r\nTo: {ADDRESS}\r\n"
        "MIME-Version: 1.0\r\nMessage-ID: <arf-20261207-1@isp.example>\r\n"
        'Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary="part1_13d.2e68ed54_boundary"\r\n\r\n'
        "--part1_13d.2e68ed54_boundary\r\n"
        'Content-Type: text/plain; charset="US-ASCII"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
        "This is an email abuse report for an email message received from IP\r\n192.0.2.1 on Thu, 8 Mar 2005.\r\n"
        "For more information about this format please see http://www.mipassoc.org/arf/.\r\n\r\n"
        "--part1_13d.2e68ed54_boundary\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <bounces@mailroom.test>\r\nOriginal-Rcpt-To: <{original.to_address}>\r\n"
        f"Arrival-Date: {formatdate()}\r\nSource-IP: 192.0.2.1\r\nAuthentication-Results: mail.isp.example; spf=pass\r\n"
        "Reported-Domain: mailroom.test\r\n\r\n"
        "--part1_13d.2e68ed54_boundary\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
        f"From: <hello@mailroom.test>\r\nTo: <{original.to_address}>\r\nSubject: {original.subject}\r\n"
        f"Message-ID: {original.message_id}\r\nDate: {formatdate()}\r\n\r\nHello Ada\r\n\r\n"
        "--part1_13d.2e68ed54_boundary--\r\n"
    ).encode()


def seen(server: Dovecot) -> list[bool]:
    return ["\\Seen" in flags for flags in server.flags()]


# --- replies ------------------------------------------------------------------------------------
def test_a_reply_reaches_the_handler_and_counts_on_the_message_it_answers(server, inbox, ada):
    answered = sent_email(ada, "Your order")
    sent_email(ada, "Our newsletter")  # sent later: the contact's last message, not the one answered
    server.append(reply_mail(answered))

    result = poll_email_inbox(inbox=inbox)

    assert (result.read, result.error) == (1, "")
    inbound = InboxMessage.objects.get()
    assert (inbound.inbox, inbound.channel, inbound.from_address, inbound.contact) == (inbox, "email", "ada@example.com", ada)
    assert inbound.body.startswith("Yes please, see you on Monday.")
    assert (inbound.status, inbound.result, HANDLED) == (InboxMessage.Status.HANDLED, "seen ada@example.com", [inbound.pk])
    assert list(DeliveryEvent.objects.filter(kind="replied").values_list("message_id", flat=True)) == [answered.pk]
    assert seen(server) == [True]  # read, and left in the mailbox
    assert server.count() == 1
    inbox.refresh_from_db()
    assert inbox.imap_polled_at is not None and inbox.imap_error == "" and inbox.imap_last_uid == 1


def test_an_out_of_office_reply_is_kept_but_not_counted_nor_handled(server, inbox, ada):
    answered = sent_email(ada)
    server.append(reply_mail(answered, text="I am away until Monday.", extra="Auto-Submitted: auto-replied\r\n"))
    server.append(
        reply_mail(answered, text="Back soon.", message_id="<ooo-2@example.com>").replace(b"Subject: Re:", b"Subject: Out of Office: Re:")
    )

    assert poll_email_inbox(inbox=inbox).read == 2

    assert InboxMessage.objects.count() == 2
    for inbound in InboxMessage.objects.all():
        assert inbound.status == InboxMessage.Status.HANDLED and "automatic reply" in inbound.result
    assert HANDLED == [] and not DeliveryEvent.objects.filter(kind="replied").exists()


# --- bounce reports -----------------------------------------------------------------------------
@pytest.mark.parametrize("full_original", [False, True], ids=["headers-only", "whole-original"])
def test_a_postfix_bounce_report_bounces_the_named_message_and_suppresses_its_address(server, inbox, ada, full_original):
    message = sent_email(ada)
    server.append(postfix_bounce(message, full_original=full_original))

    assert poll_email_inbox(inbox=inbox).read == 1

    bounce = DeliveryEvent.objects.get(kind="bounced")
    assert bounce.message == message
    assert bounce.payload["recipients"] == [{"recipient": "ada@example.com", "action": "failed", "status": "5.1.1"}]
    assert "User unknown" in bounce.payload["diagnostic"]
    assert Suppression.objects.get(address="ada@example.com", channel="email").reason == Suppression.Reason.HARD_BOUNCE
    report = InboxMessage.objects.get()
    assert report.status == InboxMessage.Status.HANDLED and f"#{message.pk}" in report.result and report.in_reply_to == message
    assert HANDLED == []  # a report is not a reply: the handler never sees it
    assert not DeliveryEvent.objects.filter(kind="replied").exists()


@pytest.mark.parametrize(("action", "status"), [("delayed", "4.4.1"), ("failed", "4.2.2")])
def test_a_delay_or_temporary_failure_report_records_no_bounce(server, inbox, ada, action, status):
    message = sent_email(ada)
    server.append(postfix_bounce(message, action=action, status=status))

    assert poll_email_inbox(inbox=inbox).read == 1

    assert not DeliveryEvent.objects.filter(kind="bounced").exists() and not Suppression.objects.exists()
    report = InboxMessage.objects.get()
    assert report.status == InboxMessage.Status.HANDLED and "no bounce recorded" in report.result


def test_a_bounce_naming_a_message_we_never_sent_suppresses_nothing(server, inbox, ada):
    """A forged report must name a real message of ours to act, and then acts only on that
    message's own address, never on an address the report makes up."""
    stranger = OutboxMessage(
        pk=999_999, subject="Forged", to_address="victim@example.com", message_id="<m999999.0123456789ab@mailroom.test>"
    )
    server.append(postfix_bounce(stranger))

    assert poll_email_inbox(inbox=inbox).read == 1

    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()
    assert "did not send" in InboxMessage.objects.get().result


# --- complaints ---------------------------------------------------------------------------------
def test_an_arf_complaint_records_a_complaint_suppresses_and_unsubscribes(server, inbox, ada, newsletter):
    message = sent_email(ada, topic=newsletter)
    server.append(arf_report(message))

    assert poll_email_inbox(inbox=inbox).read == 1

    complaint = DeliveryEvent.objects.get(kind="complained")
    assert complaint.message == message and complaint.payload["feedback_type"] == "abuse"
    assert Suppression.objects.get(address="ada@example.com").reason == Suppression.Reason.COMPLAINT
    assert Subscription.objects.get(contact=ada, topic=newsletter).status == Subscription.Status.UNSUBSCRIBED


def test_a_not_spam_feedback_report_is_not_a_complaint(server, inbox, ada):
    server.append(arf_report(sent_email(ada), feedback_type="not-spam"))
    assert poll_email_inbox(inbox=inbox).read == 1
    assert not DeliveryEvent.objects.filter(kind="complained").exists() and not Suppression.objects.exists()
    assert "not a complaint" in InboxMessage.objects.get().result


# --- each mail once -----------------------------------------------------------------------------
def test_polling_again_reads_each_mail_once_even_after_flags_change_or_a_lost_position(server, inbox, ada):
    message = sent_email(ada)
    server.append(reply_mail(message))
    server.append(postfix_bounce(message))
    server.append(arf_report(message))
    assert poll_email_inbox(inbox=inbox).read == 3
    assert poll_email_inbox(inbox=inbox).read == 0  # nothing new

    with server.client() as client:  # someone marks everything unread in their mail client
        client.select("INBOX")
        client.store("1:*", "-FLAGS", r"(\Seen)")
    assert poll_email_inbox(inbox=inbox).read == 0
    Inbox.objects.filter(pk=inbox.pk).update(imap_last_uid=0)  # a crash before the position was saved
    inbox.refresh_from_db()
    assert poll_email_inbox(inbox=inbox).read == 3  # read again...

    assert InboxMessage.objects.count() == 3  # ...and changes nothing
    assert sorted(DeliveryEvent.objects.exclude(kind="delivered").values_list("kind", flat=True)) == ["bounced", "complained", "replied"]
    assert [InboxMessage.objects.get(from_address="ada@example.com").pk] == HANDLED


def test_mail_arriving_between_polls_is_read_by_the_next_one(server, inbox, ada):
    message = sent_email(ada)
    server.append(reply_mail(message))
    assert poll_email_inbox(inbox=inbox).read == 1
    server.append(reply_mail(message, text="One more thing", message_id="<reply-2@example.com>"))
    assert poll_email_inbox(inbox=inbox).read == 1
    assert list(InboxMessage.objects.order_by("pk").values_list("body", flat=True))[1].startswith("One more thing")


# --- failures -----------------------------------------------------------------------------------
def test_a_wrong_password_is_kept_on_the_inbox_without_the_password_and_nothing_is_lost(server, inbox, ada, settings, caplog):
    message = sent_email(ada)
    server.append(reply_mail(message))
    server.append(postfix_bounce(message))
    settings.MAILROOM_SECRETS = {"IMAP": "not-the-Password-42"}

    with caplog.at_level(logging.WARNING, logger="messaging.mailbox"):
        result = poll_email_inbox(inbox=inbox)

    inbox.refresh_from_db()
    assert result.read == 0 and "refused" in inbox.imap_error and "AUTHENTICATIONFAILED" in inbox.imap_error
    assert inbox.imap_polled_at is not None
    assert "not-the-Password-42" not in inbox.imap_error + caplog.text and "AUTHENTICATIONFAILED" in caplog.text
    assert not InboxMessage.objects.exists() and seen(server) == [False, False]

    settings.MAILROOM_SECRETS = {"IMAP": PASSWORD}  # fixed: the next poll picks everything up
    assert poll_email_inbox(inbox=inbox).read == 2
    inbox.refresh_from_db()
    assert inbox.imap_error == "" and InboxMessage.objects.count() == 2 and DeliveryEvent.objects.filter(kind="bounced").exists()


def test_an_unreachable_server_and_a_missing_secret_are_clear_errors(server, settings):
    closed = make_inbox(server, imap_port=free_port())
    assert "Cannot connect to 127.0.0.1" in poll_email_inbox(inbox=closed).error
    Inbox.objects.filter(pk=closed.pk).delete()
    settings.MAILROOM_SECRETS = {}
    inbox = make_inbox(server)
    assert poll_email_inbox(inbox=inbox).error == "Secret IMAP is not set (environment MAILROOM_SECRET_IMAP)."
    inbox.refresh_from_db()
    assert inbox.imap_error.startswith("Secret IMAP is not set")


def test_plaintext_login_is_refused_for_a_remote_host(server, settings):
    inbox = make_inbox(server)
    Inbox.objects.filter(pk=inbox.pk).update(imap_host="imap.example.com")
    inbox.refresh_from_db()
    assert "in clear" in poll_email_inbox(inbox=inbox).error  # refused before connecting
    settings.MAILROOM_IMAP_PLAINTEXT_HOSTS = ["imap.example.com"]  # the deployment says this network is private
    check_imap_settings(inbox)  # no longer refused


HOSTILE = [
    b"From: nul@example.com\r\nTo: replies@mailroom.test\r\nSubject: nul\x00here\r\nMessage-ID: <nul@example.com>\r\n\r\nbody with \x00 NUL\r\n",
    b"From: surrogate@example.com\r\nTo: replies@mailroom.test\r\nSubject: \xed\xa0\x80 lone\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nlone \xed\xa0\x80 surrogate and \xff\xfe bytes\r\n",
    b"From: =?utf-8?b?broken?= <broken@example.com>\r\nTo: replies@mailroom.test\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n--never-closed\r\nContent-Type: text/plain; charset=x-unknown-charset\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@\r\n--never-closed\r\nContent-Type: message/rfc822\r\n\r\n",
    b"From: <<<@@@>>>\r\nTo: replies@mailroom.test\r\nContent-Type: multipart/report; report-type=delivery-status\r\n\r\nno parts at all\r\n",
    b"From: big@example.com\r\nTo: replies@mailroom.test\r\nSubject: huge\r\n\r\n" + b"A" * 3_000_000 + b"\r\n",
    b"\x00\x01\x02 not a mail at all \xff\r\n\r\n\r\n",
]


def test_hostile_mail_is_stored_readable_and_never_stops_the_mail_after_it(server, inbox, ada):
    for raw in HOSTILE:
        server.append(raw)
    server.append(reply_mail(sent_email(ada)))

    result = poll_email_inbox(inbox=inbox)

    assert (result.read, result.error) == (len(HOSTILE) + 1, "")
    assert InboxMessage.objects.count() == len(HOSTILE) + 1
    for inbound in InboxMessage.objects.all():
        stored = inbound.from_address + inbound.body + inbound.result + (inbound.external_id or "")
        assert "\x00" not in stored and not any("\ud800" <= char <= "\udfff" for char in stored), inbound.pk
        assert len(inbound.body) <= 100_000
    assert "\ufffd" in InboxMessage.objects.get(from_address="surrogate@example.com").body
    assert InboxMessage.objects.get(from_address="ada@example.com").status == InboxMessage.Status.HANDLED
    assert len(HANDLED) == len(HOSTILE)  # the replies among them reached the handler, the broken report did not
    assert all(seen(server))


# --- the schedule -------------------------------------------------------------------------------
def test_the_cluster_reads_every_active_imap_inbox_each_minute(server, ada):
    assert schedule_functions()["messaging.tasks.poll_email_inboxes"] == "read email inboxes"
    assert may_run("messaging.tasks.poll_email_inboxes")
    active = make_inbox(server)
    paused = Inbox.objects.create(name="Old", channel="email", address="old@mailroom.test", imap_host="127.0.0.1", is_active=False)
    webhook_only = Inbox.objects.create(name="ESP", channel="email", address="esp@mailroom.test")
    server.append(reply_mail(sent_email(ada)))

    assert poll_email_inboxes() == 1

    active.refresh_from_db(), paused.refresh_from_db(), webhook_only.refresh_from_db()
    assert active.imap_polled_at is not None
    assert paused.imap_polled_at is None and webhook_only.imap_polled_at is None


# --- the console --------------------------------------------------------------------------------
def inbox_form(server: Dovecot, **overrides) -> dict:
    return {
        "name": "Replies",
        "channel": "email",
        "address": ADDRESS,
        "handler": f"{__name__}.remember",
        "is_active": "on",
        "imap_host": "127.0.0.1",
        "imap_port": str(server.port),
        "imap_security": "none",
        "imap_username": USER,
        "imap_password_secret": "IMAP",
        "imap_folder": "INBOX",
        **overrides,
    }


def test_ops_cannot_point_an_inbox_at_another_imap_server(client, ops, server, inbox):
    """Whoever sets the host receives the password Mailroom logs in with."""
    client.force_login(ops)
    response = client.post(
        f"/admin/messaging/inbox/{inbox.pk}/change/", inbox_form(server, imap_host="127.0.0.2", imap_password_secret="SMTP")
    )
    assert response.status_code == 302
    inbox.refresh_from_db()
    assert (inbox.imap_host, inbox.imap_password_secret) == ("127.0.0.1", "IMAP")
    page = client.get(f"/admin/messaging/inbox/{inbox.pk}/change/").content.decode()
    assert "127.0.0.1" in page and 'name="imap_host"' not in page and PASSWORD not in page


def test_admin_configures_the_mailbox_but_not_plaintext_to_a_remote_host(client, admin_user, server):
    client.force_login(admin_user)
    response = client.post("/admin/messaging/inbox/add/", inbox_form(server, imap_host="imap.example.com"))
    assert response.status_code == 200 and "imap_security" in response.context["adminform"].form.errors
    assert not Inbox.objects.exists()
    response = client.post("/admin/messaging/inbox/add/", inbox_form(server))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Inbox.objects.get().imap_port == server.port


def test_check_mailbox_now_reads_the_mail_and_shows_the_outcome(client, ops, server, inbox, ada, settings):
    server.append(reply_mail(sent_email(ada)))
    client.force_login(ops)
    url = f"/admin/messaging/inbox/{inbox.pk}/check_mailbox/"
    assert "Check mailbox now" in client.get(f"/admin/messaging/inbox/{inbox.pk}/change/").content.decode()
    client.get(url)  # a link followed (GET) only opens the dialog: reading mail takes its POST
    assert not InboxMessage.objects.exists()
    response = client.post(url, {"_form_submitted": "on"}, follow=True)
    assert "1 new mail read." in response.content.decode()
    assert InboxMessage.objects.count() == 1

    settings.MAILROOM_SECRETS = {"IMAP": "wrong-secret-value"}
    page = client.post(url, {"_form_submitted": "on"}, follow=True).content.decode()
    assert "AUTHENTICATIONFAILED" in page and "wrong-secret-value" not in page
    listing = client.get("/admin/messaging/inbox/").content.decode()
    assert "AUTHENTICATIONFAILED" in listing  # the last poll's error, on the list
