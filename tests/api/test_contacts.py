import pytest

from messaging.contacts import create_contact
from messaging.models import AuditEntry, Contact
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts/"


def test_marketer_creates_a_contact_through_the_contact_rules(as_user, marketer):
    response = as_user(marketer).post(URL, {"email": "  Grace@Example.COM ", "phone": "06 12 34 56 78", "first_name": "Grace"})
    assert response.status_code == 201, response.json()
    body = response.json()
    # the same normalisers as the console and the import
    assert body["email"] == "grace@example.com"
    assert body["phone"] == "+33612345678"
    contact = Contact.objects.get(pk=body["id"])
    assert AuditEntry.objects.filter(verb="created", target_id=str(contact.pk), actor=marketer).exists()


def test_invalid_contact_fields_are_a_400_problem_naming_each_field(as_user, marketer):
    response = as_user(marketer).post(URL, {"email": "not-an-email", "timezone": "Mars/Olympus", "attributes": "x"})
    body = assert_problem(response, 400, "invalid")
    assert set(body["fields"]) == {"attributes"}  # types first: attributes must be an object
    response = as_user(marketer).post(URL, {"email": "not-an-email", "timezone": "Mars/Olympus"})
    body = assert_problem(response, 400, "invalid")
    assert "not a valid email address" in body["fields"]["email"][0]
    assert "time zone" in body["fields"]["timezone"][0]
    assert not Contact.objects.exists()


def test_a_contact_needs_an_identity(as_user, marketer):
    body = assert_problem(as_user(marketer).post(URL, {"first_name": "Nobody"}), 400, "invalid")
    assert "non_field_errors" in body["fields"]


def test_duplicate_email_is_a_409_conflict(as_user, marketer, contact):
    body = assert_problem(as_user(marketer).post(URL, {"email": "ADA@example.com"}), 409, "duplicate_contact")
    assert body["fields"] == {"email": ["Already used by another contact."]}


def test_list_filters_searches_orders_and_paginates(as_user, support):
    for n in range(3):
        create_contact(actor=None, email=f"p{n}@example.com", first_name=f"P{n}", locale="fr" if n else "en")
    client = as_user(support)
    body = client.get(URL, {"page_size": 2, "ordering": "email"}).json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    assert [c["email"] for c in body["results"]] == ["p0@example.com", "p1@example.com"]
    assert client.get(URL, {"locale": "fr"}).json()["count"] == 2
    assert client.get(URL, {"search": "p2"}).json()["results"][0]["email"] == "p2@example.com"
    assert client.get(URL, {"email": "P1@EXAMPLE.COM"}).json()["count"] == 1


def test_support_reads_and_edits_but_cannot_create(as_user, support, contact):
    client = as_user(support)
    assert client.get(f"{URL}{contact.pk}/").json()["email"] == "ada@example.com"
    response = client.patch(f"{URL}{contact.pk}/", {"first_name": "Augusta"})
    assert response.status_code == 200 and response.json()["first_name"] == "Augusta"
    assert_problem(client.post(URL, {"email": "new@example.com"}), 403, "permission_denied")


def test_approver_only_reads(as_user, approver, contact):
    client = as_user(approver)
    assert client.get(URL).status_code == 200
    assert_problem(client.patch(f"{URL}{contact.pk}/", {"first_name": "X"}), 403)


def test_unauthenticated_is_a_401_with_a_challenge(api):
    response = api.get(URL)
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_missing_contact_is_a_404_problem(as_user, marketer):
    assert_problem(as_user(marketer).get(f"{URL}999999/"), 404, "not_found")


def test_delete_is_a_soft_delete_and_hides_the_contact(as_user, admin_user, marketer, contact):
    assert_problem(as_user(marketer).delete(f"{URL}{contact.pk}/"), 403)
    assert as_user(admin_user).delete(f"{URL}{contact.pk}/").status_code == 204
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert_problem(as_user(admin_user).get(f"{URL}{contact.pk}/"), 404)


def test_erase_removes_identity(as_user, admin_user, contact):
    assert as_user(admin_user).post(f"{URL}{contact.pk}/erase/").status_code == 204
    contact.refresh_from_db()
    assert contact.email is None and contact.erased_at is not None
