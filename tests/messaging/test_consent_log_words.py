"""The consent log in words (issue 18, item 6): the consent records list, a record's page and
the contact page read as sentences, never a details dict or a source key."""

import pytest
from django.urls import reverse

from messaging.consent import ConsentContext, subscribe, unsubscribe
from messaging.consent_text import describe_consent
from messaging.contacts import create_contact
from messaging.models import ConsentRecord, Topic
from messaging.preferences import pause_marketing, set_marketing_frequency, update_preferences
from tests.support.visible_text import raw_keys, visible_text

pytestmark = pytest.mark.django_db
CENTER = ConsentContext(source=ConsentRecord.Source.PREFERENCE_CENTER, ip_address="203.0.113.4", user_agent="Firefox")


@pytest.fixture
def history(newsletter, marketer):
    """Ada subscribes in the preference center, pauses, changes frequency and language, and
    unsubscribes by the link."""
    ada = create_contact(actor=None, email="ada@example.com", locale="en")
    subscribe(actor=None, contact=ada, topic=newsletter, context=CENTER)
    pause_marketing(actor=None, contact=ada, weeks=2, context=CENTER)
    set_marketing_frequency(actor=None, contact=ada, frequency="weekly", context=CENTER)
    update_preferences(contact=ada, wanted={(newsletter.pk, "email")}, locale="fr", context=CENTER)
    unsubscribe(actor=marketer, contact=ada, topic=newsletter, context=ConsentContext(source=ConsentRecord.Source.UNSUBSCRIBE_LINK))
    return ada


def test_each_record_reads_as_a_sentence(history):
    sentences = [describe_consent(record) for record in ConsentRecord.objects.order_by("created_at", "id")]
    assert sentences[0] == "Subscribed to “Newsletter” by email via the preference center, IP 203.0.113.4"
    assert sentences[1].startswith("Paused marketing messages for 2 weeks, until ") and sentences[1].endswith(
        "via the preference center, IP 203.0.113.4"
    )
    assert sentences[2].startswith("Changed how often marketing messages come from “Everything, as it happens” to “Weekly digest only")
    assert sentences[3] == "Changed the language from English to French via the preference center, IP 203.0.113.4"
    assert sentences[4] == "Unsubscribed from “Newsletter” by email via the unsubscribe link by marketer"
    for sentence in sentences:
        assert "{" not in sentence and "preference_center" not in sentence and "unsubscribe_link" not in sentence


def test_unknown_details_keys_read_as_words(history):
    record = ConsentRecord(contact=history, action="granted", channel="sms", source="api", details={"form_name": "Spring"})
    record.topic = Topic.objects.get(key="newsletter")
    record.topic_id = record.topic.pk
    assert describe_consent(record) == "Subscribed to “Newsletter” by SMS; Form name: Spring through the API"


def test_consent_log_pages_show_sentences_not_json(history, client, admin_user):
    client.force_login(admin_user)
    log = client.get(reverse("admin:messaging_consentrecord_changelist")).content.decode()
    assert "Subscribed to “Newsletter” by email via the preference center, IP 203.0.113.4" in visible_text(log)
    assert raw_keys(log) == []
    record = ConsentRecord.objects.filter(action="paused").get()
    page = client.get(reverse("admin:messaging_consentrecord_change", args=[record.pk])).content.decode()
    assert "Paused marketing messages for 2 weeks" in visible_text(page) and raw_keys(page) == []
    contact_page = client.get(reverse("admin:messaging_contact_change", args=[history.pk])).content.decode()
    words = visible_text(contact_page)
    assert "Timeline" in words and "Unsubscribed from “Newsletter” by email via the unsubscribe link by marketer" in words
    assert '{"' not in words and "preference_center" not in words
