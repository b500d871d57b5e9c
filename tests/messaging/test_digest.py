"""The weekly digest: marketing email for a contact who chose it is held, then goes out in
one digest at their local Monday 09:00, and the held messages are marked as in it."""

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from messaging import tasks
from messaging.consent import ConsentContext, subscribe
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message, with_preheader
from messaging.delivery.sending import send_due_messages
from messaging.digest import HELD, IN_DIGEST_PREFIX
from messaging.models import OutboxMessage, SandboxMessage
from messaging.preferences import set_marketing_frequency
from messaging.schedules import SCHEDULES, may_run

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"
VIEW_LINK = re.compile(r"http://127\.0\.0\.1:8000(/v/[^/\s\"]+/)")
# Monday 7 December 2026: 09:05 in Paris is 08:05 UTC; in New York it is 14:05 UTC.
PARIS_MONDAY_0905 = datetime(2026, 12, 7, 8, 5, tzinfo=UTC)
NEW_YORK_MONDAY_0905 = datetime(2026, 12, 7, 14, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    settings.MAILROOM_BASE_URL = BASE


def digest_reader(contact, topic):
    subscribe(actor=None, contact=contact, topic=topic)
    set_marketing_frequency(actor=None, contact=contact, frequency="weekly", context=ConsentContext())
    return contact


def campaign_mail(contact, topic, subject, preheader=""):
    html = with_preheader(f"<html><body><h1>{subject}</h1><p>Our offer.</p></body></html>", preheader)
    return enqueue_message(channel="email", contact=contact, topic=topic, subject=subject, text=f"{subject}: our offer", html=html)


def receive_week_of_mail(contact, topic) -> list[OutboxMessage]:
    messages = []
    for day, subject in ((1, "Winter sale"), (2, "New arrivals"), (3, "Last chance")):
        with time_machine.travel(datetime(2026, 12, day, 10, 0, tzinfo=UTC), tick=False):
            messages.append(campaign_mail(contact, topic, subject, preheader=f"{subject} preview"))
            send_due_messages()
    return messages


def digests():
    """The digests the sandbox received (in each contact's language: Ada reads French)."""
    return SandboxMessage.objects.filter(message__metadata__has_key="weekly_digest")


def run_digest_task(at: datetime) -> int:
    with time_machine.travel(at, tick=False):
        queued = tasks.send_weekly_digests()
        send_due_messages()
    return queued


def test_a_digest_contact_gets_one_digest_at_local_monday_nine_listing_the_held_mail(contact, newsletter):
    # given a contact in Paris on the weekly digest who was sent 3 marketing emails this week
    reader = digest_reader(contact, newsletter)
    held = receive_week_of_mail(reader, newsletter)
    # then none of them went out: they are held for the digest
    assert not SandboxMessage.objects.exists()
    assert [(m.status, m.error) for m in OutboxMessage.objects.filter(pk__in=[m.pk for m in held])] == [("suppressed", HELD)] * 3
    # when the hourly task runs on Monday at 09:05 in Paris
    assert run_digest_task(PARIS_MONDAY_0905) == 1
    # then exactly one digest went, listing the 3 subjects and preheaders with view-in-browser links
    (digest,) = digests()
    assert digest.to_address == "ada@example.com"
    for subject in ("Winter sale", "New arrivals", "Last chance"):
        assert subject in digest.body_text and subject in digest.body_html
        assert f"{subject} preview" in digest.body_text
    links = VIEW_LINK.findall(digest.body_text)
    assert len(links) == 3
    with time_machine.travel(PARIS_MONDAY_0905, tick=False):
        for path, subject in zip(links, ("Winter sale", "New arrivals", "Last chance"), strict=True):
            page = Client().get(path)
            assert page.status_code == 200 and f"<h1>{subject}</h1>" in page.content.decode()
    # the digest is marketing mail like any other: footer with unsubscribe link and postal address
    assert "1 rue de la Poste" in digest.body_text and "/u/" in digest.body_text
    # and the 3 messages are marked as delivered in that digest, still not counted as sent
    digest_message = OutboxMessage.objects.get(pk=digest.message_id)
    assert digest_message.status == "sent"
    for message in held:
        message.refresh_from_db()
        assert message.status == "suppressed" and message.error == f"{IN_DIGEST_PREFIX}{digest_message.pk}"


def test_running_the_digest_task_again_sends_nothing_more(contact, newsletter):
    reader = digest_reader(contact, newsletter)
    receive_week_of_mail(reader, newsletter)
    assert run_digest_task(PARIS_MONDAY_0905) == 1
    assert run_digest_task(PARIS_MONDAY_0905.replace(minute=45)) == 0
    assert digests().count() == 1


def test_a_contact_in_another_time_zone_gets_theirs_at_their_own_nine(contact, newsletter):
    paris = digest_reader(contact, newsletter)
    new_york = digest_reader(create_contact(actor=None, email="grace@example.com", timezone="America/New_York"), newsletter)
    receive_week_of_mail(paris, newsletter)
    receive_week_of_mail(new_york, newsletter)
    # at 09:05 in Paris only Ada's digest goes
    assert run_digest_task(PARIS_MONDAY_0905) == 1
    assert list(digests().values_list("to_address", flat=True)) == ["ada@example.com"]
    # nothing at 09:05 UTC (10:05 in Paris, 04:05 in New York)
    assert run_digest_task(datetime(2026, 12, 7, 9, 5, tzinfo=UTC)) == 0
    # at 09:05 in New York, Grace's
    assert run_digest_task(NEW_YORK_MONDAY_0905) == 1
    assert sorted(digests().values_list("to_address", flat=True)) == ["ada@example.com", "grace@example.com"]


def test_an_empty_week_sends_no_digest(contact, newsletter):
    digest_reader(contact, newsletter)
    assert run_digest_task(PARIS_MONDAY_0905) == 0
    assert not SandboxMessage.objects.exists()


def test_mail_held_after_the_digest_goes_in_next_weeks(contact, newsletter):
    reader = digest_reader(contact, newsletter)
    receive_week_of_mail(reader, newsletter)
    run_digest_task(PARIS_MONDAY_0905)
    with time_machine.travel(datetime(2026, 12, 8, 10, 0, tzinfo=UTC), tick=False):
        later = campaign_mail(reader, newsletter, "Boxing day")
        send_due_messages()
    later.refresh_from_db()
    assert (later.status, later.error) == ("suppressed", HELD)
    assert run_digest_task(datetime(2026, 12, 14, 8, 5, tzinfo=UTC)) == 1
    assert digests().count() == 2 and "Boxing day" in digests().order_by("-pk").first().body_text


def test_the_digest_is_a_registered_hourly_schedule():
    spec = next(spec for spec in SCHEDULES if spec["func"] == "messaging.tasks.send_weekly_digests")
    assert spec["schedule_type"] == "H" and may_run(spec["func"])


def test_a_subject_that_looks_like_a_template_is_listed_as_is_not_run(contact, newsletter):
    # a held subject is rendered output: a contact's name like "{{ contact.email }}" in it stays text
    reader = digest_reader(contact, newsletter)
    with time_machine.travel(datetime(2026, 12, 2, 10, 0, tzinfo=UTC), tick=False):
        held = enqueue_message(channel="email", contact=reader, topic=newsletter, subject="x", text="Our offer")
        OutboxMessage.objects.filter(pk=held.pk).update(subject="Hi {{ contact.email }} & {% now 'Y' %}")
        send_due_messages()
    assert run_digest_task(PARIS_MONDAY_0905) == 1
    (digest,) = digests()
    assert "Hi {{ contact.email }} & {% now 'Y' %}" in digest.body_text
    assert "Hi &#123;&#123; contact.email &#125;&#125; &amp; &#123;% now &#x27;Y&#x27; %&#125;" in digest.body_html


def test_the_digest_speaks_the_contacts_language(contact, newsletter):
    receive_week_of_mail(digest_reader(contact, newsletter), newsletter)
    run_digest_task(PARIS_MONDAY_0905)
    (digest,) = digests()
    assert digest.subject == "Votre résumé de la semaine : 3 messages"
    assert "Le lire dans votre navigateur" in digest.body_text
