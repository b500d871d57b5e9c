"""Issue 16, items 1 and 5: a message carrying a secret (password-reset link, email
verification link, gift-card code) is readable by its recipient only.

The attack: an anonymous `POST /e/reset/` for an admin's address queues a working reset
link; any staff member who can read the outbox (change page, sandbox inbox, API,
view-in-browser) copies it, sets a new password and logs in as the admin. The same for a
contact's verification link and a gift-card code (Support and Ops could redeem it).
Each role reads every page and endpoint that shows a message body; the secret never
appears, the page says it is hidden, and the real secret still goes out on the wire.
"""

import email
import email.policy
import json
import re
from datetime import timedelta
from unittest.mock import patch

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, TestCase
from django.utils import timezone

from growth.giftcards import hash_code, issue_gift_card, normalise_code
from growth.models import GiftCard
from messaging.delivery import work
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.models import OutboxMessage, Provider, SandboxMessage
from messaging.tasks import send_password_reset
from messaging.verification import send_email_verification
from tests.conftest import make_user
from tests.support.smtp_sink import SMTPSink, free_port

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"
ROLES = ["Marketer", "Approver", "Ops", "Support", "Admin"]
RESET_LINK = re.compile(r"/e/reset/([A-Za-z0-9_:\-]{20,})/")
VERIFY_LINK = re.compile(r"/e/verify/([A-Za-z0-9_:\-]{20,})/")
HIDDEN = "hidden: contains a secret link"
NEW_PASSWORD = "a brand new stolen pass phrase 9"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = BASE


@pytest.fixture
def boss(db) -> User:
    """The admin whose account the attacker wants."""
    user = make_user("boss", "Admin", superuser=True)
    user.set_password("the boss's own pass phrase 1")
    user.save()
    return user


def reader(role: str) -> Client:
    user = make_user(f"reader-{role.lower()}", role, superuser=role == "Admin")
    client = Client()
    client.force_login(user)
    return client


def ask_reset_anonymously(address: str) -> None:
    """The page hands the account lookup and the email to the cluster (the same work for
    any address); run that task here as the cluster would, with JSON-round-tripped kwargs."""
    handed_off: list[dict] = []
    hand_off = patch.object(work, "enqueue_task", lambda func, **kwargs: handed_off.append(json.loads(json.dumps(kwargs))))
    with hand_off, TestCase.captureOnCommitCallbacks(execute=True):
        response = Client().post("/e/reset/", {"email": address})
    assert response.status_code == 200
    assert len(handed_off) == 1
    send_password_reset(**handed_off[0])


def body_pages(message: OutboxMessage) -> dict[str, str]:
    """Every console page, API endpoint and public page that shows this message's body."""
    caught = SandboxMessage.objects.filter(message=message).first()
    pages = {
        "outbox list": "/admin/messaging/outboxmessage/",
        "outbox change page": f"/admin/messaging/outboxmessage/{message.pk}/change/",
        "API message list": "/api/v1/messages/",
        "API message detail": f"/api/v1/messages/{message.pk}/",
        "view in browser": public_link(message.pk, "__MAILROOM_VIEW__").removeprefix(BASE),
    }
    if caught is not None:
        pages |= {
            "sandbox inbox": "/admin/messaging/sandboxmessage/",
            "sandbox message": f"/admin/messaging/sandboxmessage/{caught.pk}/change/",
        }
    return pages


def everything_readable(client: Client, message: OutboxMessage) -> str:
    seen = []
    for url in body_pages(message).values():
        response = client.get(url)
        seen.append(f"{url} {response.status_code}\n{response.content.decode(errors='replace')}")
    return "\n".join(seen)


def the_only_message() -> OutboxMessage:
    return OutboxMessage.objects.get()


# --- password reset: the account takeover ---------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_staff_cannot_read_an_admins_reset_link_in_any_page_that_shows_a_message_body(role, boss):
    ask_reset_anonymously(boss.email)
    send_due_messages()  # the default sandbox keeps a copy too
    message = the_only_message()
    assert message.status == OutboxMessage.Status.SENT
    seen = everything_readable(reader(role), message)
    assert not RESET_LINK.search(seen), f"{role} read the reset link"


@pytest.mark.parametrize("role", ROLES)
def test_staff_cannot_read_a_queued_reset_link_in_the_outbox_change_page(role, boss):
    ask_reset_anonymously(boss.email)
    message = the_only_message()
    page = reader(role).get(f"/admin/messaging/outboxmessage/{message.pk}/change/").content.decode()
    assert not RESET_LINK.search(page)


def test_the_outbox_and_sandbox_pages_say_the_body_is_hidden_even_to_an_admin(boss):
    ask_reset_anonymously(boss.email)
    send_due_messages()
    message, admin = the_only_message(), reader("Admin")
    caught = SandboxMessage.objects.get(message=message)
    for url in (f"/admin/messaging/outboxmessage/{message.pk}/change/", f"/admin/messaging/sandboxmessage/{caught.pk}/change/"):
        page = admin.get(url)
        assert page.status_code == 200 and HIDDEN in page.content.decode()
    assert admin.get(f"/api/v1/messages/{message.pk}/").json()["is_sensitive"] is True
    browser_view = Client().get(body_pages(message)["view in browser"])
    assert browser_view.status_code == 200 and HIDDEN in browser_view.content.decode()


def test_the_reset_link_is_in_no_column_of_the_stored_rows(boss):
    ask_reset_anonymously(boss.email)
    send_due_messages()
    stored = [*OutboxMessage.objects.values(), *SandboxMessage.objects.values()]
    assert not RESET_LINK.search(repr(stored))


@pytest.mark.parametrize("role", ["Marketer", "Ops", "Support"])
def test_another_staff_member_cannot_take_over_the_admin_account_through_a_reset_request(role, boss):
    # the attacker, logged out, asks for the boss's reset link, then reads the console
    ask_reset_anonymously(boss.email)
    send_due_messages()
    seen = everything_readable(reader(role), the_only_message())
    for token in set(RESET_LINK.findall(seen)):  # whatever looks like a link is tried
        Client().post(f"/e/reset/{token}/", {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    # the boss's password is unchanged and the attacker cannot log in as the boss
    boss.refresh_from_db()
    assert not boss.check_password(NEW_PASSWORD)
    assert not Client().login(username="boss", password=NEW_PASSWORD)


# --- the secret still goes out on the wire ----------------------------------------------------
@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


def received_text(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return parsed.get_body(preferencelist=("plain",)).get_content()


def test_the_owner_receives_a_working_reset_link_over_smtp_and_the_row_keeps_no_secret(boss, smtp_sink):
    Provider.objects.create(name="SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port})
    ask_reset_anonymously(boss.email)
    message = the_only_message()
    assert message.is_sensitive and message.sealed_secrets and not RESET_LINK.search(message.body_text)
    send_due_messages()
    [raw] = smtp_sink.messages
    token = RESET_LINK.search(received_text(raw)).group(1)
    # the link received works, once
    client = Client()
    done = client.post(f"/e/reset/{token}/", {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 200
    assert Client().login(username="boss", password=NEW_PASSWORD)
    # once sent, the seal is dropped: nothing in the database can rebuild the link
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT and message.sealed_secrets == ""
    assert token not in repr(list(OutboxMessage.objects.values()))


def test_a_reset_email_retried_after_a_temporary_failure_still_carries_its_link(boss, smtp_sink, settings):
    settings.MAILROOM_FAILOVER_AFTER = 99
    provider = Provider.objects.create(name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": free_port()})
    ask_reset_anonymously(boss.email)
    send_due_messages()  # nobody listens: a temporary failure
    message = the_only_message()
    assert message.status == OutboxMessage.Status.QUEUED and message.sealed_secrets  # kept for the retry
    provider.config["port"] = smtp_sink.port
    provider.save()
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        send_due_messages()
    [raw] = smtp_sink.messages
    assert RESET_LINK.search(received_text(raw))
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT and message.sealed_secrets == ""


# --- email verification -------------------------------------------------------------------------
@pytest.mark.parametrize("role", ROLES)
def test_staff_cannot_read_a_contacts_verification_link_in_any_page_that_shows_a_message_body(role, contact):
    send_email_verification(actor=None, contact=contact)
    send_due_messages()
    seen = everything_readable(reader(role), the_only_message())
    assert not VERIFY_LINK.search(seen), f"{role} read the verification link"


def test_a_staff_member_cannot_verify_a_contacts_address_from_the_console(contact):
    send_email_verification(actor=None, contact=contact)
    send_due_messages()
    seen = everything_readable(reader("Support"), the_only_message())
    for token in set(VERIFY_LINK.findall(seen)):
        Client().post(f"/e/verify/{token}/")
    contact.refresh_from_db()
    assert contact.email_verified_at is None


def test_the_contact_receives_a_working_verification_link_over_smtp(contact, smtp_sink):
    Provider.objects.create(name="SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port})
    send_email_verification(actor=None, contact=contact)
    send_due_messages()
    token = VERIFY_LINK.search(received_text(smtp_sink.messages[0])).group(1)
    assert Client().post(f"/e/verify/{token}/").status_code == 200
    contact.refresh_from_db()
    assert contact.email_verified_at is not None


# --- gift-card codes ----------------------------------------------------------------------------
@pytest.fixture
def issued_to_contact(marketer, contact, django_capture_on_commit_callbacks):
    call_command("sync_templates", verbosity=0)
    with django_capture_on_commit_callbacks(execute=True):
        return issue_gift_card(actor=marketer, amount="50", recipient=contact, sender_name="Grace")


def code_forms(code: str) -> list[str]:
    return [code, normalise_code(code)]


@pytest.mark.parametrize("role", ROLES)
def test_staff_cannot_read_a_gift_card_code_in_any_page_that_shows_a_message_body(role, issued_to_contact):
    send_due_messages()
    message = OutboxMessage.objects.get(dedup_key=f"gift-card-delivered:{issued_to_contact.card.pk}")
    seen = everything_readable(reader(role), message)
    for form in code_forms(issued_to_contact.code):
        assert form not in seen, f"{role} read the gift-card code"


@pytest.mark.parametrize("role", ["Ops", "Support", "Admin"])
def test_searching_the_outbox_and_sandbox_for_a_gift_card_code_finds_nothing(role, issued_to_contact):
    send_due_messages()
    client = reader(role)
    for url in ("/admin/messaging/outboxmessage/", "/admin/messaging/sandboxmessage/"):
        page = client.get(url, {"q": normalise_code(issued_to_contact.code)[:8]}).content.decode()
        assert "ada@example.com" not in page


def test_the_gift_card_code_is_in_no_stored_message_and_reaches_the_recipient_over_smtp(issued_to_contact, smtp_sink):
    Provider.objects.create(name="SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port})
    stored = repr([*OutboxMessage.objects.values()])
    assert not any(form in stored for form in code_forms(issued_to_contact.code))
    send_due_messages()
    parsed = email.message_from_bytes(smtp_sink.messages[0], policy=email.policy.default)
    html = parsed.get_body(preferencelist=("html",)).get_content()
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert issued_to_contact.code in html and issued_to_contact.code in text
    assert GiftCard.objects.get(code_hash=hash_code(issued_to_contact.code)).pk == issued_to_contact.card.pk
    assert not any(
        form in repr([*OutboxMessage.objects.values(), *SandboxMessage.objects.values()]) for form in code_forms(issued_to_contact.code)
    )


def test_view_in_browser_says_the_body_is_hidden_in_the_contacts_language(contact):
    send_email_verification(actor=None, contact=contact)  # the contact reads French
    send_due_messages()
    page = Client().get(body_pages(the_only_message())["view in browser"]).content.decode()
    assert "masqué : contient un lien secret" in page and not VERIFY_LINK.search(page)
