"""The campaign console through HTTP as named users: list, wizard, overview, dry run,
transitions (including crafted POSTs), approval queue, calendar, reschedule, report."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.campaigns.actions import schedule_campaign
from marketing.campaigns.fanout import create_messages, fan_out, prepare_recipients
from marketing.models import Campaign, FanoutChunk
from marketing.views.campaigns import CampaignRecipientsView
from messaging.consent import suppress_address
from messaging.models import AuditEntry
from tests.marketing.conftest import wizard_form

pytestmark = pytest.mark.django_db
State = Campaign.State


def transition(client, campaign, name, **data):
    return client.post(f"/admin/marketing/campaign/{campaign.pk}/do/{name}/", data)


def test_the_list_filters_by_state_and_links_each_campaign(client, marketer, pending):
    client.force_login(marketer)
    response = client.get("/admin/marketing/campaign/", {"state": "pending_approval"})
    assert response.status_code == 200
    assert f"/admin/marketing/campaign/{pending.pk}/overview/".encode() in response.content
    assert b'data-state="pending_approval"' in response.content
    response = client.get("/admin/marketing/campaign/", {"state": "draft"})
    assert f"/admin/marketing/campaign/{pending.pk}/overview/".encode() not in response.content


def test_the_wizard_creates_a_draft_through_the_action(client, marketer, newsletter, segment, version):
    client.force_login(marketer)
    assert client.get("/admin/marketing/campaign/new/").status_code == 200
    response = client.post("/admin/marketing/campaign/new/", wizard_form(newsletter, segment, version, variant_B_subject="Other subject"))
    campaign = Campaign.objects.get(name="From the wizard")
    assert response.status_code == 302 and response["Location"].endswith(f"/{campaign.pk}/overview/")
    assert campaign.state == State.DRAFT and campaign.created_by == marketer
    assert list(campaign.variants.values_list("label", "subject")) == [("A", ""), ("B", "Other subject")]
    assert AuditEntry.objects.filter(verb="created", target_id=str(campaign.pk)).exists()


def test_the_wizard_shows_errors_and_creates_nothing(client, marketer, newsletter):
    client.force_login(marketer)
    response = client.post("/admin/marketing/campaign/new/", {"name": "", "channel": "fax", "topic": newsletter.pk})
    assert response.status_code == 200 and b"wizard-errors" in response.content
    assert not Campaign.objects.exists()


def test_overview_and_dry_run_partial(client, marketer, draft):
    client.force_login(marketer)
    assert client.get(f"/admin/marketing/campaign/{draft.pk}/overview/").status_code == 200
    response = client.get(f"/admin/marketing/campaign/{draft.pk}/dry-run/")
    assert response.status_code == 200
    assert response.context["result"].eligible == 6
    assert response.content.count(b'data-testid="sample-render"') == 5


def test_the_recipients_page_lists_who_got_the_campaign_by_status(client, marketer, approver, support, people, sending, monkeypatch):
    url = f"/admin/marketing/campaign/{sending.pk}/recipients/"
    client.force_login(marketer)
    # given a campaign not yet fanned out: the page says when recipients appear
    empty = client.get(url)
    assert empty.status_code == 200 and b'data-testid="recipient-empty"' in empty.content
    # when it fans out with one suppressed address
    suppress_address(actor=None, address=people[0].email, channel="email", reason="manual")
    fan_out(campaign=sending)
    page = client.get(url).content.decode()
    # then every recipient is listed with its message, and the skipped one with its reason
    assert page.count('data-testid="recipient-row"') == 6 and "All (6)" in page and "Queued (5)" in page
    skipped = client.get(url, {"status": "skipped"}).content.decode()
    assert skipped.count('data-testid="recipient-row"') == 1 and people[0].email in skipped and "Suppressed" in skipped
    # and an unknown status shows everyone; pages hold 50 (2 here)
    assert client.get(url, {"status": "nope"}).content.decode().count('data-testid="recipient-row"') == 6
    monkeypatch.setattr(CampaignRecipientsView, "per_page", 2)
    last = client.get(url, {"page": 3}).content.decode()
    assert last.count('data-testid="recipient-row"') == 2 and "Page 3 of 3 (6 recipients)" in last
    assert (
        f'{sending.pk}/recipients/" data-testid="recipients-link"'
        in client.get(f"/admin/marketing/campaign/{sending.pk}/overview/").content.decode()
    )
    # and who may see campaigns may see it; support may not
    client.force_login(approver)
    assert client.get(url).status_code == 200
    client.force_login(support)
    assert client.get(url).status_code == 403


def test_the_overview_shows_how_far_the_fan_out_has_come(client, marketer, sending, settings):
    settings.MAILROOM_FANOUT_CHUNK = 2
    client.force_login(marketer)
    # given a fan-out of six recipients in three chunks, one of them done
    prepare_recipients(campaign=sending)
    FanoutChunk.objects.filter(pk=FanoutChunk.objects.filter(campaign=sending).order_by("pk").first().pk).update(done=True)
    page = client.get(f"/admin/marketing/campaign/{sending.pk}/overview/")
    assert b'data-testid="fanout-progress"' in page.content and b"1 of 3 chunks (33 %)" in page.content
    # when every chunk is done the campaign says so instead
    create_messages(campaign=sending)
    fan_out(campaign=sending)
    page = client.get(f"/admin/marketing/campaign/{sending.pk}/overview/")
    assert b'data-testid="fanout-progress"' not in page.content and b"All messages created" in page.content


def test_a_crafted_post_cannot_send_an_unapproved_campaign(client, marketer, pending):
    client.force_login(marketer)
    # the marketer may schedule approved campaigns, but this one is not approved
    response = transition(client, pending, "schedule")
    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["A campaign must be approved before it is scheduled."]
    # and she may not approve at all
    assert transition(client, pending, "approve").status_code == 403
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL and pending.approved_by is None


def test_transitions_refuse_get(client, approver, pending):
    client.force_login(approver)
    assert client.get(f"/admin/marketing/campaign/{pending.pk}/do/approve/").status_code == 405
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL


def test_approver_approves_and_rejects_through_http(client, approver, pending, draft):
    client.force_login(approver)
    response = transition(client, pending, "approve", next="/admin/marketing/campaign/approvals/")
    assert response["Location"] == "/admin/marketing/campaign/approvals/"
    pending.refresh_from_db()
    assert pending.state == State.APPROVED


def test_reject_through_http_needs_a_reason(client, approver, pending):
    client.force_login(approver)
    transition(client, pending, "reject", reason="")
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL
    transition(client, pending, "reject", reason="Wrong audience")
    pending.refresh_from_db()
    assert pending.state == State.REJECTED and pending.rejection_reason == "Wrong audience"


def test_the_approval_queue_is_for_approvers_only(client, marketer, approver, pending):
    client.force_login(marketer)
    assert client.get("/admin/marketing/campaign/approvals/").status_code == 403
    client.force_login(approver)
    response = client.get("/admin/marketing/campaign/approvals/")
    assert response.status_code == 200
    [item] = response.context["items"]
    assert item["campaign"] == pending and item["result"].eligible == 6 and item["preview"].subject.startswith("News for")


def test_calendar_month_week_and_filters(client, marketer, scheduled, newsletter):
    client.force_login(marketer)
    day = timezone.localdate(scheduled.send_at).isoformat()
    for params in ({"date": day}, {"date": day, "view": "week"}, {"date": day, "channel": "email", "topic": newsletter.pk}):
        response = client.get("/admin/marketing/campaign/calendar/", params)
        assert response.status_code == 200 and f'data-campaign="{scheduled.pk}"'.encode() in response.content
    response = client.get("/admin/marketing/campaign/calendar/", {"date": day, "channel": "sms"})
    assert f'data-campaign="{scheduled.pk}"'.encode() not in response.content


def test_reschedule_endpoint_rechecks_state_and_permission(client, marketer, approver, approved, sending):
    later = (timezone.now() + timedelta(days=3)).date().isoformat()
    client.force_login(approver)  # no send permission
    assert client.post(f"/admin/marketing/campaign/{sending.pk}/reschedule/", {"date": later}).status_code == 403
    client.force_login(marketer)
    response = client.post(f"/admin/marketing/campaign/{sending.pk}/reschedule/", {"date": later})
    assert response.status_code == 409 and "Only a scheduled campaign" in response.json()["error"]
    assert client.post(f"/admin/marketing/campaign/{sending.pk}/reschedule/", {"date": "not a date"}).status_code == 400


def test_report_page_renders_figures_and_charts(client, marketer, sending):
    fan_out(campaign=sending)
    client.force_login(marketer)
    response = client.get(f"/admin/marketing/campaign/{sending.pk}/report/")
    assert response.status_code == 200
    assert response.context["report"]["recipients"] == 6
    # nothing sent yet: the funnel is all zeros, shown as an empty state, not bare axes
    assert [(c["name"], c["empty"]) for c in response.context["chart_cards"]] == [("funnel", True)]
    assert "funnel" not in response.context["charts"]
    assert b'data-chart="funnel"' in response.content and b"No data yet." in response.content
    assert b"vendor/plotly.min.js" in response.content


def test_sidebar_links_campaign_pages_for_an_approver(client, approver, pending):
    client.force_login(approver)
    page = client.get("/admin/").content.decode()
    for link in ("/admin/marketing/campaign/", "/admin/marketing/campaign/calendar/", "/admin/marketing/campaign/approvals/"):
        assert f'href="{link}"' in page
    assert schedule_campaign  # imported for symmetry with the actions under test
