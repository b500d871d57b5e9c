"""Templates: list/detail, versions, activate, deactivate and render preview."""

import pytest

from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.models import AuditEntry, Template
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/templates/"


@pytest.fixture
def welcome(db):
    template = create_template(actor=None, key="welcome", name="Welcome")
    version = save_template_version(
        actor=None, template=template, body_format="html", subject="Hi {{ contact.first_name }}", body="<p>Plan {{ plan }}</p>"
    )
    activate_template_version(actor=None, version=version)
    template.refresh_from_db()
    return template


def test_marketer_creates_a_template_and_saves_and_activates_a_version(as_user, marketer, newsletter):
    client = as_user(marketer)
    response = client.post(
        URL, {"key": "spring-sale", "name": "Spring sale", "category": "promotion", "topic": "newsletter", "locale": "fr"}
    )
    assert response.status_code == 201, response.json()
    template = response.json()
    assert template["active_version"] is None and template["topic"] == "newsletter" and template["locale"] == "fr"
    versions = f"{URL}{template['id']}/versions/"
    saved = client.post(versions, {"body_format": "html", "subject": "Soldes", "body": "<p>Bonjour</p>", "note": "first"})
    assert saved.status_code == 201 and saved.json()["number"] == 1 and saved.json()["author"] == "marketer"
    # the same content again is the same version
    same = client.post(versions, {"body_format": "html", "subject": "Soldes", "body": "<p>Bonjour</p>", "note": "first"})
    assert same.status_code == 200 and same.json()["number"] == 1
    activated = client.post(f"{URL}{template['id']}/activate/", {"version": 1})
    assert activated.status_code == 200 and activated.json()["active_version"] == 1
    assert AuditEntry.objects.filter(verb="activated", actor=marketer).exists()
    assert client.get(versions).json()["results"][0]["number"] == 1


def test_a_template_syntax_error_names_the_line(as_user, marketer, welcome):
    body = assert_problem(
        as_user(marketer).post(f"{URL}{welcome.pk}/versions/", {"body_format": "html", "body": "<p>ok</p>\n{% if %}"}),
        400,
        "template_syntax",
    )
    assert "Line 2" in body["detail"] and "body" in body["fields"]
    assert welcome.versions.count() == 1


def test_template_validation_errors(as_user, marketer, welcome):
    client = as_user(marketer)
    body = assert_problem(client.post(URL, {"key": "not a slug", "category": "spam"}), 400, "invalid")
    assert set(body["fields"]) == {"key", "name", "category"}
    body = assert_problem(client.post(URL, {"key": "welcome", "name": "Again"}), 400)
    assert body["fields"] == {"key": ["Already used."]}
    body = assert_problem(client.post(f"{URL}{welcome.pk}/activate/", {"version": 9}), 400)
    assert "version" in body["fields"]


def test_preview_renders_with_samples_a_contact_and_extra_context(as_user, approver, welcome, contact):
    client = as_user(approver)
    response = client.post(f"{URL}{welcome.pk}/preview/", {"contact": contact.pk, "context": {"plan": "pro"}})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == 1 and body["subject"] == "Hi Ada" and "Plan pro" in body["html"]
    assert body["missing"] == []
    assert "plan" in client.post(f"{URL}{welcome.pk}/preview/", {}).json()["missing"]


def test_list_filters_and_search(as_user, approver, welcome):
    create_template(actor=None, key="receipt", name="Receipt", channel="sms")
    client = as_user(approver)
    assert client.get(URL, {"channel": "sms"}).json()["results"][0]["key"] == "receipt"
    assert client.get(URL, {"search": "welc"}).json()["count"] == 1
    assert client.get(f"{URL}{welcome.pk}/").json()["active_version"] == 1


def test_approver_cannot_edit_templates(as_user, approver, welcome):
    client = as_user(approver)
    assert_problem(client.post(URL, {"key": "x", "name": "X"}), 403)
    assert_problem(client.post(f"{URL}{welcome.pk}/versions/", {"body": "x"}), 403)
    assert_problem(client.post(f"{URL}{welcome.pk}/activate/", {"version": 1}), 403)
    assert_problem(client.post(f"{URL}{welcome.pk}/deactivate/"), 403)


def test_ops_cannot_read_templates(as_user, ops, welcome):
    assert_problem(as_user(ops).get(URL), 403)


def test_deactivate_and_missing_and_anonymous(api, as_user, marketer, welcome):
    client = as_user(marketer)
    assert client.post(f"{URL}{welcome.pk}/deactivate/").json()["is_active"] is False
    assert Template.objects.get(pk=welcome.pk).is_active is False
    assert_problem(client.get(f"{URL}999/"), 404)
    assert_problem(api.get(URL), 401)


def test_a_template_is_renamed_and_moved_to_a_topic_with_a_patch(as_user, marketer, approver, welcome, newsletter):
    client = as_user(marketer)
    changed = client.patch(f"{URL}{welcome.pk}/", {"name": "Welcome aboard", "category": "lifecycle", "topic": "newsletter"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["name"], changed.json()["category"], changed.json()["topic"]) == ("Welcome aboard", "lifecycle", "newsletter")
    entry = AuditEntry.objects.get(verb="changed", target_type="messaging.template", target_id=str(welcome.pk))
    assert entry.changes["name"] == {"before": "Welcome", "after": "Welcome aboard"}
    # the key, the language and the content do not change this way; a blank name is refused
    assert client.patch(f"{URL}{welcome.pk}/", {"key": "other"}, format="json").json()["key"] == "welcome"
    assert "name" in assert_problem(client.patch(f"{URL}{welcome.pk}/", {"name": "  "}, format="json"), 400)["fields"]
    assert "topic" in assert_problem(client.patch(f"{URL}{welcome.pk}/", {"topic": "nope"}, format="json"), 400)["fields"]
    assert_problem(as_user(approver).patch(f"{URL}{welcome.pk}/", {"name": "X"}, format="json"), 403)
    assert Template.objects.get(pk=welcome.pk).name == "Welcome aboard"
