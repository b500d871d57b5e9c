"""The segment builder pages through HTTP, as a marketer and as roles that may not edit."""

import pytest
from django.urls import reverse

from marketing.models import Segment
from marketing.segments.actions import create_segment
from messaging.contacts import create_contact
from messaging.models import AuditEntry


@pytest.fixture
def contacts(db):
    for i in range(5):
        create_contact(actor=None, email=f"c{i}@example.com", attributes={"lifecycle_stage": "customer" if i < 3 else "lead"})


def tree_post(**extra):
    data = {
        "name": "Customers",
        "description": "",
        "kind": "dynamic",
        "node": ["r:group", "r.0:rule"],
        "r-op": "and",
        "r.0-field": "attribute",
        "r.0-key": "lifecycle_stage",
        "r.0-operator": "equals",
        "r.0-value": "customer",
    }
    data.update(extra)
    return data


def test_preview_counts_the_posted_rules(client, marketer, contacts):
    client.force_login(marketer)
    response = client.post(reverse("admin:marketing_segment_builder_preview"), tree_post())
    assert response.status_code == 200
    assert b'data-testid="live-count">3<' in response.content


def test_preview_names_the_bad_rule(client, marketer, contacts):
    client.force_login(marketer)
    response = client.post(reverse("admin:marketing_segment_builder_preview"), tree_post(**{"r.0-operator": "gt", "r.0-value": "lots"}))
    assert response.status_code == 200
    assert "Rule 1: “lots” is not a number." in response.content.decode()


def test_structural_edit_adds_a_group_and_swaps_the_preview(client, marketer, contacts):
    client.force_login(marketer)
    response = client.post(reverse("admin:marketing_segment_builder_tree"), tree_post(edit="add-group:r"))
    body = response.content.decode()
    assert 'value="r.1:group"' in body and 'value="r.1.0:rule"' in body
    assert 'hx-swap-oob="true"' in body


def test_save_creates_the_segment_and_refreshes(client, marketer, contacts):
    client.force_login(marketer)
    response = client.post(reverse("admin:marketing_segment_builder_new"), tree_post(refresh="1"))
    segment = Segment.objects.get(name="Customers")
    assert response.status_code == 302 and response["Location"] == reverse("admin:marketing_segment_builder", args=[segment.pk])
    assert segment.member_count == 3 and segment.rules["rules"][0]["key"] == "lifecycle_stage"
    assert AuditEntry.objects.filter(verb="created", target_id=str(segment.pk), actor=marketer).exists()


def test_save_with_a_bad_rule_keeps_the_form_and_saves_nothing(client, marketer, contacts):
    client.force_login(marketer)
    response = client.post(reverse("admin:marketing_segment_builder_new"), tree_post(**{"r.0-field": "shoe_size"}))
    assert response.status_code == 200
    assert "Rule 1: unknown field “shoe_size”." in response.content.decode()
    assert not Segment.objects.exists()


def test_approver_can_look_but_not_save(client, approver, marketer, contacts):
    segment = create_segment(name="Mine", actor=marketer, rules={"type": "group", "op": "and", "rules": []})
    client.force_login(approver)
    assert client.get(reverse("admin:marketing_segment_builder", args=[segment.pk])).status_code == 200
    assert client.post(reverse("admin:marketing_segment_builder", args=[segment.pk]), tree_post(name="Hacked")).status_code == 403
    assert client.post(reverse("admin:marketing_segment_operation", args=[segment.pk, "refresh"])).status_code == 403
    segment.refresh_from_db()
    assert segment.name == "Mine"


def test_support_cannot_open_the_builder(client, support, contacts):
    client.force_login(support)
    assert client.get(reverse("admin:marketing_segment_builder_new")).status_code == 403


def test_static_segment_members_through_the_page(client, marketer, contacts):
    client.force_login(marketer)
    segment = create_segment(name="Picked", actor=marketer, kind=Segment.Kind.STATIC)
    url = reverse("admin:marketing_segment_operation", args=[segment.pk, "add-members"])
    response = client.post(url, {"identifiers": "c1@example.com\nnobody@example.com"}, follow=True)
    assert "1 contacts added." in response.content.decode()
    assert "No contact found for 1 entries: nobody@example.com" in response.content.decode()
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_refresh_and_duplicate_need_post(client, marketer, contacts):
    client.force_login(marketer)
    segment = create_segment(name="S", actor=marketer, rules={"type": "group", "op": "and", "rules": []})
    client.get(reverse("admin:marketing_segment_operation", args=[segment.pk, "duplicate"]))
    assert Segment.objects.count() == 1
    client.post(reverse("admin:marketing_segment_operation", args=[segment.pk, "duplicate"]))
    assert Segment.objects.filter(name="S (copy)").exists()
