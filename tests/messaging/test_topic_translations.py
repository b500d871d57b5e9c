"""Topic names and descriptions per language: the admin edits them, the preference center
and the unsubscribe pages show them in the contact's language, and an untranslated topic
keeps its default name."""

import pytest
from django.test import Client

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.models import AuditEntry, Topic

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"
FRENCH = {"fr": {"name": "Lettre d'information", "description": "Nos actualités, chaque mois."}}


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"


@pytest.fixture
def topic(db) -> Topic:
    return Topic.objects.create(key="newsletter", name="Newsletter", description="Monthly news.", translations=FRENCH)


def sent_to(contact, topic: Topic):
    subscribe(actor=None, contact=contact, topic=topic)
    message = enqueue_message(channel="email", contact=contact, topic=topic, subject="News", html="<p>News</p>")
    send_due_messages()
    return message


def link(message, marker: str) -> str:
    return public_link(message.pk, marker).removeprefix(BASE)


def test_name_in_a_language_falls_back_to_the_default_name(topic):
    assert topic.name_in("fr") == "Lettre d'information"
    assert topic.name_in("fr-ca") == "Lettre d'information"  # a regional variant reads the language's
    assert topic.description_in("fr") == "Nos actualités, chaque mois."
    assert topic.name_in("de") == "Newsletter"
    assert topic.name_in(None) == "Newsletter"
    topic.translations = {"fr": {"name": "  "}}  # blank or malformed entries are not a name
    assert topic.name_in("fr") == "Newsletter"
    topic.translations = {"fr": "Actualités"}
    assert topic.name_in("fr") == "Newsletter"


def test_the_french_preference_center_shows_the_french_name_and_description(topic, contact):
    assert contact.locale == "fr"
    message = sent_to(contact, topic)
    page = Client().get(link(message, "__MAILROOM_PREFERENCES__")).content.decode()
    assert "Lettre d&#x27;information" in page and "Nos actualités, chaque mois." in page
    assert "Newsletter" not in page and "Monthly news." not in page


def test_an_english_contact_reads_the_default_name(topic):
    contact = create_contact(actor=None, email="grace@example.com", locale="en")
    message = sent_to(contact, topic)
    page = Client().get(link(message, "__MAILROOM_PREFERENCES__")).content.decode()
    assert "Newsletter" in page and "Lettre d&#x27;information" not in page


def test_the_unsubscribe_pages_name_the_topic_in_the_contacts_language(topic, contact):
    message = sent_to(contact, topic)
    url = link(message, "__MAILROOM_UNSUBSCRIBE__")
    asked = Client().get(url).content.decode()
    assert "Lettre d&#x27;information" in asked and "Newsletter" not in asked
    done = Client().post(url, {"scope": "topic"}).content.decode()
    assert "Lettre d&#x27;information" in done


def topic_form(topic: Topic, **changes) -> dict:
    data = {
        "key": topic.key,
        "name": topic.name,
        "description": topic.description,
        "kind": topic.kind,
        "position": topic.position,
        "name_fr": topic.name_in("fr") if "fr" in topic.translations else "",
        "description_fr": topic.description_in("fr") if "fr" in topic.translations else "",
    }
    return data | changes


def test_the_topic_admin_edits_the_french_name_and_audits_it(topic, admin_user):
    client = Client()
    client.force_login(admin_user)
    url = f"/admin/messaging/topic/{topic.pk}/change/"
    form = client.get(url).content.decode()
    assert 'name="name_fr"' in form and 'value="Lettre d&#x27;information"' in form

    response = client.post(url, topic_form(topic, name_fr="Actualités", description_fr=""))

    assert response.status_code == 302
    topic.refresh_from_db()
    assert topic.translations == {"fr": {"name": "Actualités"}}
    entry = AuditEntry.objects.get(verb="updated", target_type="messaging.topic")
    assert entry.changes["translations"]["before"] == FRENCH
    assert entry.changes["translations"]["after"] == {"fr": {"name": "Actualités"}}


def test_a_french_name_with_a_nul_character_is_refused_and_nothing_changes(topic, admin_user):
    client = Client()
    client.force_login(admin_user)
    response = client.post(f"/admin/messaging/topic/{topic.pk}/change/", topic_form(topic, name="Renamed", name_fr="Actu\x00alités"))
    assert response.status_code == 200  # the form again, with its error
    assert "Null characters are not allowed." in response.content.decode()
    topic.refresh_from_db()
    assert (topic.name, topic.translations) == ("Newsletter", FRENCH)
    assert not AuditEntry.objects.filter(target_type="messaging.topic").exists()
