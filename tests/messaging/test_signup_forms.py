"""Sign-up forms: the hosted page, double opt-in, and each anti-abuse rule."""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.test import Client
from django.utils import timezone

from messaging.contacts import create_contact, erase_contact
from messaging.content.catalog import sync_catalog
from messaging.models import (
    ConsentRecord,
    Contact,
    LegalBasis,
    OutboxMessage,
    PendingSignup,
    SignupForm,
    Subscription,
    Topic,
    WebhookDelivery,
)
from messaging.schedules import schedule_functions
from messaging.secrets import attach_secrets, reveal
from messaging.signup.actions import delete_expired_signups, embed_snippet
from messaging.signup.signals import signup_confirmed
from messaging.webhooks.emit import forget_subscribed_types
from messaging.webhooks.endpoints import create_endpoint

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"
URL = "/f/news/"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = BASE


@pytest.fixture
def offers(newsletter) -> Topic:
    return Topic.objects.create(key="offers", name="Offers", kind=Topic.Kind.MARKETING)


@pytest.fixture
def signup_form(newsletter, offers) -> SignupForm:
    form = SignupForm.objects.create(name="News", slug="news", ask_name=True, wording="Yes, email me the news.")
    form.topics.set([newsletter, offers])
    return form


def nothing_stored() -> bool:
    return not (PendingSignup.objects.exists() or Contact.objects.exists() or OutboxMessage.objects.exists())


def sign_up(client: Client, email: str = "grace@example.com", **extra):
    return client.post(URL, {"email": email, "topics": ["newsletter"], "first_name": "Grace"} | extra, REMOTE_ADDR="203.0.113.7")


def confirm_link(message: OutboxMessage) -> str:
    attach_secrets(message)
    return re.search(re.escape(BASE) + r"(/f/c/[^\s/]+/)", reveal(message, message.body_text)).group(1)


def test_hosted_page_counts_a_view_and_needs_no_csrf_token(signup_form):
    client = Client(enforce_csrf_checks=True)
    assert client.get(URL).status_code == 200
    response = sign_up(client)
    assert response.status_code == 200
    signup_form.refresh_from_db()
    assert (signup_form.views, signup_form.submissions, signup_form.confirmations) == (1, 1, 0)


def test_page_in_the_visitors_language(signup_form):
    assert 'lang="fr"' in Client().get(URL + "?lang=fr").content.decode()
    assert 'lang="fr"' in Client().get(URL, HTTP_ACCEPT_LANGUAGE="fr").content.decode()


def test_double_opt_in_sends_one_transactional_confirmation_and_subscribes_nothing_yet(signup_form):
    sign_up(Client())
    message = OutboxMessage.objects.get()
    assert message.priority == OutboxMessage.Priority.TRANSACTIONAL
    assert message.to_address == "grace@example.com"
    assert PendingSignup.objects.count() == 1
    assert not Subscription.objects.exists()


def test_confirming_subscribes_with_a_consent_record_and_the_link_works_once(signup_form, newsletter, django_capture_on_commit_callbacks):
    received = []

    @receiver(signup_confirmed, weak=False)
    def _heard(sender, contact, form, **kwargs):
        received.append((contact.email, form.pk))

    try:
        sign_up(Client())
        link = confirm_link(OutboxMessage.objects.get())
        visitor = Client()
        assert visitor.get(link).status_code == 200  # a GET shows a button, changes nothing
        assert not Subscription.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            response = visitor.post(link, REMOTE_ADDR="198.51.100.9")
        assert response.status_code == 200
    finally:
        signup_confirmed.disconnect(_heard)
    contact = Contact.objects.get(email="grace@example.com")
    assert contact.first_name == "Grace"
    assert list(Subscription.objects.values_list("topic__key", "status")) == [("newsletter", "subscribed")]
    record = ConsentRecord.objects.get()
    assert record.source == ConsentRecord.Source.SIGNUP
    assert record.legal_basis == LegalBasis.CONSENT
    assert record.ip_address == "203.0.113.7"
    assert record.details["form"] == signup_form.pk
    assert record.details["wording"] == "Yes, email me the news."
    assert record.details["confirmed_ip"] == "198.51.100.9"
    assert record.created_at is not None and record.wording_version.startswith("sha256:")
    assert not PendingSignup.objects.exists()  # consumed
    signup_form.refresh_from_db()
    assert signup_form.confirmations == 1
    assert received == [("grace@example.com", signup_form.pk)]
    again = Client().post(link)
    assert again.status_code == 410 and ConsentRecord.objects.count() == 1


def test_honeypot_pretends_success_and_stores_nothing(signup_form):
    normal = Client().post(URL, {"email": "x@example.com", "topics": ["newsletter"]}, REMOTE_ADDR="203.0.113.8")
    PendingSignup.objects.all().delete()
    OutboxMessage.objects.all().delete()
    Contact.objects.all().delete()
    robot = Client().post(URL, {"email": "y@example.com", "topics": ["newsletter"], "website": "http://spam"})
    assert robot.status_code == normal.status_code == 200
    assert robot.content == normal.content
    assert nothing_stored()


def test_ip_throttle_refuses_and_stores_nothing(signup_form, settings):
    settings.MAILROOM_RATE_LIMITS = settings.MAILROOM_RATE_LIMITS | {"signup-ip": (1, 3600)}
    assert sign_up(Client(), "a@example.com").status_code == 200
    PendingSignup.objects.all().delete()
    OutboxMessage.objects.all().delete()
    response = sign_up(Client(), "b@example.com")
    assert response.status_code == 429
    assert nothing_stored()


def test_address_throttle_refuses_and_stores_nothing(signup_form, settings):
    settings.MAILROOM_RATE_LIMITS = settings.MAILROOM_RATE_LIMITS | {"signup-address": (1, 3600)}
    sign_up(Client())
    PendingSignup.objects.all().delete()
    OutboxMessage.objects.all().delete()
    response = Client().post(URL, {"email": "grace@example.com", "topics": ["newsletter"]}, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 429
    assert nothing_stored()


def test_no_second_confirmation_within_the_resend_window(signup_form, settings):
    settings.MAILROOM_SIGNUP_RESEND_MINUTES = 10
    sign_up(Client())
    sign_up(Client())
    assert OutboxMessage.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        sign_up(Client())
    assert OutboxMessage.objects.count() == 2


def test_an_existing_address_reveals_nothing(signup_form, newsletter):
    new = sign_up(Client(), "new@example.com")
    pending = sign_up(Client(), "new@example.com")
    subscribed_contact = Contact.objects.create(email="old@example.com")
    Subscription.objects.create(contact=subscribed_contact, topic=newsletter)
    subscribed = sign_up(Client(), "old@example.com")
    assert new.status_code == pending.status_code == subscribed.status_code == 200
    assert new.content == pending.content == subscribed.content
    # the subscribed address is sent nothing
    assert not OutboxMessage.objects.filter(to_address="old@example.com").exists()


def test_expired_link_shows_a_clear_page_and_the_daily_task_deletes_it(signup_form, settings):
    settings.MAILROOM_SIGNUP_EXPIRY_DAYS = 7
    sign_up(Client())
    link = confirm_link(OutboxMessage.objects.get())
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = Client().post(link)
        assert response.status_code == 410
        assert "expired" in response.content.decode()
        assert delete_expired_signups() == 1
        after_cleanup = Client().get(link)
        assert after_cleanup.status_code == 410 and "expired" in after_cleanup.content.decode()
    assert not PendingSignup.objects.exists() and not Subscription.objects.exists()
    assert "messaging.tasks.clean_expired_signups" in schedule_functions()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-address", "topics": ["newsletter"]}, "valid email"),
        ({"email": "grace@example.com", "topics": ["unknown"]}, "Pick topics from the list"),
    ],
)
def test_bad_input_gets_a_clear_error_and_nothing_written(signup_form, data, field):
    response = Client().post(URL, data)
    assert response.status_code == 400
    assert field in response.content.decode()
    assert nothing_stored()
    signup_form.refresh_from_db()
    assert signup_form.submissions == 0


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.com/x"])
def test_a_redirect_must_be_http(signup_form, url):
    signup_form.thank_you_url = url
    with pytest.raises(ValidationError) as error:
        signup_form.full_clean()
    assert "http" in str(error.value)


def test_single_opt_in_subscribes_at_once(signup_form):
    signup_form.double_opt_in = False
    signup_form.save()
    sign_up(Client())
    assert Subscription.objects.filter(contact__email="grace@example.com", topic__key="newsletter").exists()
    assert not OutboxMessage.objects.exists() and not PendingSignup.objects.exists()


def test_snippet_is_a_plain_form_with_the_honeypot(signup_form):
    snippet = embed_snippet(form=signup_form)
    assert f'<form method="post" action="{BASE}/f/news/">' in snippet
    assert 'name="website"' in snippet and "<script" not in snippet
    assert 'name="first_name"' in snippet and 'value="offers"' in snippet


def test_support_cannot_edit_forms_marketer_can(signup_form, support, marketer):
    change = f"/admin/messaging/signupform/{signup_form.pk}/change/"
    client = Client()
    client.force_login(support)
    assert client.post(change, {"name": "Hijacked"}).status_code == 403
    client.force_login(marketer)
    page = client.get(change).content.decode()
    assert f"{BASE}/f/news/" in page and "&lt;form method=&quot;post&quot;" in page  # the hosted page and the snippet
    assert client.get("/admin/messaging/signupform/add/").status_code == 200


def test_the_catalog_template_is_used_in_the_visitors_language(signup_form):
    sync_catalog(actor=None)
    Client().post(URL + "?lang=fr", {"email": "fr@example.com", "topics": ["newsletter"]})
    message = OutboxMessage.objects.get()
    assert message.subject == "Confirmez votre inscription"
    link = confirm_link(message)
    assert Client().post(link).status_code == 200
    assert Contact.objects.get(email="fr@example.com").locale == "fr"


def test_a_language_not_offered_is_refused_and_nothing_written(signup_form):
    signup_form.ask_language = True
    signup_form.save()
    response = Client().post(URL, {"email": "grace@example.com", "topics": ["newsletter"], "language": "xx"})
    assert response.status_code == 400
    assert "Pick a language from the list." in response.content.decode()
    assert nothing_stored()


def test_a_confirmed_sign_up_is_announced_to_webhook_endpoints(signup_form, settings, admin_user, django_capture_on_commit_callbacks):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/", event_types=["form.confirmed"])
    forget_subscribed_types()
    sign_up(Client())
    link = confirm_link(OutboxMessage.objects.get())
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(link)
    body = json.loads(WebhookDelivery.objects.get().body)
    contact = Contact.objects.get(email="grace@example.com")
    assert body["type"] == "form.confirmed"
    assert body["data"] == {"contact_id": contact.pk, "form_id": signup_form.pk, "form": "news"}


def test_erasing_a_contact_deletes_her_unconfirmed_sign_ups(signup_form, admin_user):
    sign_up(Client(), email="Grace@Example.com")
    assert PendingSignup.objects.count() == 1
    contact = create_contact(actor=admin_user, email="grace@example.com")
    erase_contact(actor=admin_user, contact=contact)
    assert not PendingSignup.objects.exists()


def test_no_topic_is_ticked_in_advance_and_a_single_topic_form_asks_no_second_question(signup_form, newsletter):
    # two topics: boxes, none ticked (a pre-ticked box is not consent), on the page and in the snippet
    page = Client().get("/f/news/").content.decode()
    assert page.count('name="topics"') == 2 and "checked" not in page
    assert "checked" not in embed_snippet(form=signup_form)
    # one topic: no box at all; signing up is the choice
    signup_form.topics.set([newsletter])
    page = Client().get("/f/news/").content.decode()
    assert 'type="checkbox"' not in page and 'type="hidden" name="topics" value="newsletter"' in page
    assert 'type="checkbox"' not in embed_snippet(form=signup_form)
