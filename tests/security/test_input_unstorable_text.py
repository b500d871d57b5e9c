"""Text no database or JSON encoder can round-trip (NUL, unpaired surrogates) and JSON
nested deeper than Python recurses: refused where it enters (API, console forms, webhooks,
CSV imports) with an error naming the field, nothing stored; and a row stored before the
fix no longer breaks the lists for everyone."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from marketing.automations.webhooks import sign_payload
from marketing.models import Event, PaymentWebhookEvent
from messaging.contacts import create_contact
from messaging.importing import import_contacts
from messaging.models import Contact, DeliveryEvent, Provider
from messaging.views.webhooks import signature_for

pytestmark = pytest.mark.django_db
CONTACTS, EVENTS = "/api/v1/contacts/", "/api/v1/events/"
SURROGATE_KEY = '{"email": "eve@example.com", "attributes": {"\\ud800": 1}}'


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def post_json(client: APIClient, url: str, raw: str):
    return client.post(url, raw, content_type="application/json")


def test_surrogate_attribute_name_is_a_400_naming_attributes_and_the_contact_list_still_answers(api):
    # given a contact the list will show
    create_contact(actor=None, email="ada@example.com")
    # when an attribute named by a lone surrogate is posted
    response = post_json(api, CONTACTS, SURROGATE_KEY)
    # then it is a 400 naming the field, nothing is stored, and the list answers for everyone
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert list(response.json()["fields"]) == ["attributes"]
    assert "cannot be stored" in response.json()["fields"]["attributes"][0]
    assert not Contact.objects.filter(email="eve@example.com").exists()
    for query in ("", "?email=ada@example.com", "?search=a", "?ordering=-id"):
        assert api.get(CONTACTS + query).status_code == 200, query


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"email": "eve@example.com", "first_name": "\\ud800"}', "first_name"),
        ('{"email": "eve@example.com", "first_name": "Eve\\udfff"}', "first_name"),
        ('{"email": "eve@example.com", "first_name": "E\\u0000ve"}', "first_name"),
        ('{"email": "eve@example.com", "attributes": {"\\u0000": 1}}', "attributes"),
        ('{"email": "eve@example.com", "attributes": {"a": {"b": ["ok", "\\udc00"]}}}', "attributes.a.b.1"),
        ('{"email": "eve@example.com", "push_tokens": ["\\u0000"]}', "push_tokens.0"),
        ('{"email": "eve@example.com\\ud800"}', "email"),
    ],
)
def test_nul_or_surrogate_anywhere_in_a_contact_is_a_400_naming_where(api, body, field):
    response = post_json(api, CONTACTS, body)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]
    assert not Contact.objects.exists()


def test_surrogate_event_properties_are_a_400_and_the_event_list_still_answers(api, contact):
    post_json(api, EVENTS, json.dumps({"contact": contact.pk, "name": "signed_up", "properties": {"plan": "pro"}}))
    for body, field in (
        ('{"email": "ada@example.com", "name": "x", "properties": {"\\ud800": 1}}', "properties"),
        ('{"email": "ada@example.com", "name": "x", "properties": {"a": "\\u0000"}}', "properties.a"),
        ('{"events": [{"email": "ada@example.com", "name": "x", "properties": {"a": "\\ud800"}}]}', "events.0.properties.a"),
        ('{"email": "ada@example.com", "name": "x", "idempotency_key": "\\udbff"}', "idempotency_key"),
    ):
        response = post_json(api, EVENTS, body)
        assert response.status_code == 400, body
        assert list(response.json()["fields"]) == [field]
    assert Event.objects.count() == 1
    assert api.get(EVENTS).status_code == 200
    assert api.get(EVENTS, {"name": "signed_up"}).status_code == 200


@pytest.mark.parametrize("levels", [1_000, 5_000, 100_000])
def test_json_nested_thousands_of_levels_deep_is_a_400_not_a_recursion_error(api, levels):
    deep = "[" * levels + "]" * levels
    for url, body in (
        (CONTACTS, '{"email": "eve@example.com", "attributes": {"x": ' + deep + "}}"),
        (EVENTS, '{"email": "eve@example.com", "name": "x", "properties": {"x": ' + deep + "}}"),
        (CONTACTS, deep),
    ):
        response = post_json(api, url, body)
        assert response.status_code == 400, (url, response.status_code)
        assert response["Content-Type"].startswith("application/problem+json")
        assert "levels deep" in json.dumps(response.json())
    assert not Contact.objects.exists()
    assert not Event.objects.exists()


def test_json_nested_a_few_levels_is_still_stored(api):
    response = post_json(api, CONTACTS, json.dumps({"email": "eve@example.com", "attributes": {"a": {"b": {"c": [1, [2, [3]]]}}}}))
    assert response.status_code == 201
    assert Contact.objects.get().attributes == {"a": {"b": {"c": [1, [2, [3]]]}}}


def sqlite_only_legacy_rows() -> None:
    """Only SQLite ever stored such rows: PostgreSQL's jsonb refuses a lone surrogate itself."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: PostgreSQL cannot hold the row")


def test_a_row_stored_with_a_surrogate_before_the_fix_does_not_break_the_lists(api, contact):
    sqlite_only_legacy_rows()
    # given JSON written before input was checked (straight to the database: text columns refuse it)
    Contact.objects.filter(pk=contact.pk).update(attributes={"\udfff": "x", "name": "Ada\ud800"})
    Event.objects.create(contact=contact, name="legacy", properties={"k": "\ud800"}, occurred_at=timezone.now())
    # then the lists and the detail still answer, with U+FFFD in place of the bad character
    for url in (CONTACTS, f"{CONTACTS}{contact.pk}/", EVENTS, EVENTS + "?name=legacy"):
        response = api.get(url)
        assert response.status_code == 200, url
        assert "\ufffd" in response.content.decode("utf-8")


def test_console_contact_form_refuses_a_surrogate_or_nul_in_attributes(client, admin_user):
    client.force_login(admin_user)
    for attributes, name in (('{"\\ud800": 1}', "surrogate"), ('{"a": "\\u0000"}', "nul")):
        response = client.post(
            "/admin/messaging/contact/add/",
            {
                "email": f"{name}@example.com",
                "locale": "en",
                "timezone": "UTC",
                "attributes": attributes,
                "push_tokens": "[]",
                "subscriptions-TOTAL_FORMS": "0",
                "subscriptions-INITIAL_FORMS": "0",
            },
        )
        assert response.status_code == 200, name  # the form again, not a redirect
        assert "cannot be stored" in response.content.decode()
        assert "attributes" in response.context["adminform"].form.errors
    assert not Contact.objects.exists()


@pytest.fixture
def signed_provider(settings):
    settings.MAILROOM_SECRETS = {"HOOK": "whsec-test"}
    return Provider.objects.create(name="ESP", channel="email", kind="sandbox", config={"webhook_secret": "HOOK"})


def test_a_signed_webhook_with_a_surrogate_or_nul_or_deep_nesting_is_a_400_and_stores_nothing(signed_provider):
    url = f"/webhooks/providers/{signed_provider.pk}/events"
    for body in (
        b'{"type": "bounced", "id": "evt-1", "message_id": "m-1", "reason": "\\ud800"}',
        b'{"type": "bounced", "id": "evt-2\\u0000", "message_id": "m-1"}',
        b'{"type": "bounced", "id": "evt-3", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ):
        response = Client().post(
            url, body, content_type="application/json", headers={"X-Mailroom-Signature": signature_for("whsec-test", body)}
        )
        assert response.status_code == 400, body[:60]
    body = b"MessageSid=SM1&MessageStatus=delivered%00"
    response = Client().post(
        url, body, content_type="application/x-www-form-urlencoded", headers={"X-Mailroom-Signature": signature_for("whsec-test", body)}
    )
    assert response.status_code == 400
    assert not DeliveryEvent.objects.exists()


def test_a_nul_byte_in_a_csv_for_the_bulk_import_names_its_line_and_imports_nothing(db):
    data = b"email,first_name\nada@example.com,Ada\nbob@example.com,B\x00b\ncarl@example.com,Carl\n"
    report = import_contacts(actor=None, stream=io.BytesIO(data))
    assert not report.imported
    assert [error.line for error in report.errors] == [3]
    assert "cannot be stored" in report.errors[0].message
    assert "first_name" in report.errors[0].message
    assert not Contact.objects.exists()


def test_a_nul_byte_in_a_csv_for_the_console_import_is_a_clear_error_and_imports_nothing(client, admin_user):
    client.force_login(admin_user)
    import_file = io.BytesIO(b"email,first_name\nada@example.com,Ada\nbob@example.com,B\x00b\n")
    import_file.name = "contacts.csv"
    form = {"import_file": import_file, "mode": "all", "encoding": "utf-8-sig", "legal_basis": "contract"}
    response = client.post("/admin/messaging/contact/import/", form, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "line 3: first_name:" in page and "cannot be stored" in page
    assert not Contact.objects.exists()


def test_a_signed_stripe_webhook_with_a_surrogate_or_deep_nesting_is_a_400_and_stores_nothing(client, settings):
    settings.MAILROOM_SECRETS = {"STRIPE_WEBHOOK": "whsec_test"}
    for body in (
        b'{"id": "evt_\\ud800", "type": "checkout.session.completed", "data": {"object": {}}}',
        b'{"id": "evt_1", "type": "x", "data": {"object": {"metadata": {"k": "\\u0000"}}}}',
        b'{"id": "evt_2", "type": "x", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ):
        response = client.post(
            reverse("marketing:webhook-stripe"),
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": sign_payload(payload=body, secret="whsec_test")},
        )
        assert response.status_code == 400, body[:40]
    assert not PaymentWebhookEvent.objects.exists()


def test_a_nul_byte_in_a_csv_for_the_import_contacts_command_names_its_line(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes(b"email,first_name\nada@example.com,Ada\nbob@example.com,B\x00b\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing imported: 1 bad rows"):
        call_command("import_contacts", str(path), stdout=io.StringIO(), stderr=err)
    assert err.getvalue().startswith("line 3: first_name: Contains a character that cannot be stored")
    assert not Contact.objects.exists()


def test_the_console_contact_page_of_a_row_stored_with_a_surrogate_still_opens(client, admin_user, contact):
    sqlite_only_legacy_rows()
    Contact.objects.filter(pk=contact.pk).update(attributes={"\udfff": "x"})
    client.force_login(admin_user)
    assert client.get(f"/admin/messaging/contact/{contact.pk}/change/").status_code == 200
    assert client.get("/admin/messaging/contact/").status_code == 200


def test_the_console_event_pages_of_a_row_stored_with_a_surrogate_still_open(client, admin_user, contact):
    sqlite_only_legacy_rows()
    event = Event.objects.create(contact=contact, name="legacy", properties={"k": "\ud800"}, occurred_at=timezone.now())
    client.force_login(admin_user)
    assert client.get("/admin/marketing/event/").status_code == 200
    assert client.get(f"/admin/marketing/event/{event.pk}/change/").status_code == 200
