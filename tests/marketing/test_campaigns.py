"""Campaign state machine, four eyes, edits after approval, dry run and bad input."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from marketing.campaigns.actions import (
    approve_campaign,
    cancel_campaign,
    pause_campaign,
    reject_campaign,
    reopen_campaign,
    reschedule_campaign,
    resume_campaign,
    schedule_campaign,
    start_campaign,
    submit_campaign,
    update_campaign,
)
from marketing.campaigns.preview import dry_run
from marketing.campaigns.states import TRANSITIONS, CampaignStateError, FourEyesViolation, can_transition
from marketing.models import Campaign, CampaignRecipient
from marketing.segments.actions import add_static_members
from messaging.consent import suppress_address, unsubscribe
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, OutboxMessage
from tests.marketing.conftest import make_people, make_segment, make_version, new_campaign

pytestmark = pytest.mark.django_db
State = Campaign.State


def audited(campaign, verb):
    return AuditEntry.objects.filter(target_type="marketing.campaign", target_id=str(campaign.pk), verb=verb)


# --- the transition table ----------------------------------------------------------------
ALLOWED = {
    (State.DRAFT, State.PENDING_APPROVAL),
    (State.DRAFT, State.CANCELLED),
    (State.PENDING_APPROVAL, State.APPROVED),
    (State.PENDING_APPROVAL, State.REJECTED),
    (State.PENDING_APPROVAL, State.DRAFT),
    (State.PENDING_APPROVAL, State.CANCELLED),
    (State.APPROVED, State.SCHEDULED),
    (State.APPROVED, State.DRAFT),
    (State.APPROVED, State.CANCELLED),
    (State.SCHEDULED, State.SENDING),
    (State.SCHEDULED, State.DRAFT),
    (State.SCHEDULED, State.CANCELLED),
    (State.SENDING, State.PAUSED),
    (State.SENDING, State.SENT),
    (State.SENDING, State.CANCELLED),
    (State.PAUSED, State.SENDING),
    (State.PAUSED, State.CANCELLED),
    (State.REJECTED, State.DRAFT),
    (State.REJECTED, State.CANCELLED),
}


@pytest.mark.parametrize("source", State.values)
@pytest.mark.parametrize("target", State.values)
def test_the_transition_table_allows_exactly_the_designed_moves(source, target):
    assert can_transition(source, target) == ((source, target) in ALLOWED)
    assert set(TRANSITIONS) == set(State.values)


def test_full_happy_path_audits_every_transition(draft, marketer, approver):
    # given a draft / when it goes through every step to sending, paused and back
    submit_campaign(actor=marketer, campaign=draft)
    approve_campaign(actor=approver, campaign=draft)
    schedule_campaign(actor=marketer, campaign=draft)
    start_campaign(actor=None, campaign=draft)
    pause_campaign(actor=marketer, campaign=draft)
    resume_campaign(actor=marketer, campaign=draft)
    draft.refresh_from_db()
    # then it is sending, and each step left its audit entry with before/after
    assert draft.state == State.SENDING
    for verb, before, after in [
        ("submitted", "draft", "pending_approval"),
        ("approved", "pending_approval", "approved"),
        ("scheduled", "approved", "scheduled"),
        ("started", "scheduled", "sending"),
        ("paused", "sending", "paused"),
        ("resumed", "paused", "sending"),
    ]:
        entry = audited(draft, verb).get()
        assert entry.changes["state"] == {"before": before, "after": after}
    assert audited(draft, "approved").get().actor == approver


# refused transitions, each through its action
def test_a_draft_cannot_be_approved_scheduled_started_paused_or_resumed(draft, marketer, approver):
    for call in (
        lambda: approve_campaign(actor=approver, campaign=draft),
        lambda: reject_campaign(actor=approver, campaign=draft, reason="no"),
        lambda: schedule_campaign(actor=marketer, campaign=draft),
        lambda: start_campaign(actor=None, campaign=draft),
        lambda: pause_campaign(actor=marketer, campaign=draft),
        lambda: resume_campaign(actor=marketer, campaign=draft),
    ):
        with pytest.raises(CampaignStateError):
            call()
    draft.refresh_from_db()
    assert draft.state == State.DRAFT
    assert not AuditEntry.objects.filter(target_type="marketing.campaign").exclude(verb="created").exists()


def test_a_pending_campaign_cannot_be_scheduled_started_or_submitted_again(pending, marketer):
    for call in (
        lambda: schedule_campaign(actor=marketer, campaign=pending),
        lambda: start_campaign(actor=None, campaign=pending),
        lambda: submit_campaign(actor=marketer, campaign=pending),
        lambda: pause_campaign(actor=marketer, campaign=pending),
    ):
        with pytest.raises(CampaignStateError):
            call()
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL


def test_an_approved_campaign_cannot_start_or_be_approved_again(approved, approver, marketer):
    with pytest.raises(CampaignStateError):
        start_campaign(actor=None, campaign=approved)
    with pytest.raises(CampaignStateError):
        approve_campaign(actor=approver, campaign=approved)
    with pytest.raises(CampaignStateError):
        resume_campaign(actor=marketer, campaign=approved)
    approved.refresh_from_db()
    assert approved.state == State.APPROVED


def test_a_sending_campaign_cannot_be_resumed_scheduled_or_reopened(sending, marketer):
    for call in (
        lambda: resume_campaign(actor=marketer, campaign=sending),
        lambda: schedule_campaign(actor=marketer, campaign=sending),
        lambda: reopen_campaign(actor=marketer, campaign=sending),
        lambda: submit_campaign(actor=marketer, campaign=sending),
    ):
        with pytest.raises(CampaignStateError):
            call()


def test_a_cancelled_or_sent_campaign_is_final(sending, marketer):
    cancel_campaign(actor=marketer, campaign=sending)
    for call in (
        lambda: resume_campaign(actor=marketer, campaign=sending),
        lambda: cancel_campaign(actor=marketer, campaign=sending),
        lambda: reopen_campaign(actor=marketer, campaign=sending),
    ):
        with pytest.raises(CampaignStateError):
            call()
    sending.refresh_from_db()
    assert sending.state == State.CANCELLED


def test_a_paused_campaign_cannot_be_paused_again(sending, marketer):
    pause_campaign(actor=marketer, campaign=sending)
    with pytest.raises(CampaignStateError):
        pause_campaign(actor=marketer, campaign=sending)


# --- four eyes -----------------------------------------------------------------------------
def test_author_cannot_approve_own_campaign(pending, marketer):
    # given a campaign the marketer submitted / when the same person tries to approve it
    with pytest.raises(PermissionDenied):
        approve_campaign(actor=marketer, campaign=pending)
    # then it is still waiting, and nothing was audited as approved
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL and pending.approved_by is None
    assert not audited(pending, "approved").exists()


def test_author_who_is_also_an_approver_still_cannot_approve(marketer, approver, newsletter, segment, version):
    # given an approver who wrote the campaign herself
    campaign = new_campaign(approver, newsletter, segment, version)
    submit_campaign(actor=approver, campaign=campaign)
    # then she cannot approve or reject it, but another person can
    with pytest.raises(FourEyesViolation):
        approve_campaign(actor=approver, campaign=campaign)
    with pytest.raises(FourEyesViolation):
        reject_campaign(actor=approver, campaign=campaign, reason="meh")
    assert approve_campaign(actor=marketer, campaign=campaign).approved_by == marketer


def test_reject_needs_a_reason_and_editing_makes_it_a_draft_again(pending, approver, marketer):
    with pytest.raises(InvalidInput):
        reject_campaign(actor=approver, campaign=pending, reason="  ")
    reject_campaign(actor=approver, campaign=pending, reason="The subject shouts.")
    pending.refresh_from_db()
    assert pending.state == State.REJECTED and pending.rejection_reason == "The subject shouts."
    assert audited(pending, "rejected").get().changes["reason"] == "The subject shouts."
    # when the author edits it / then it is a draft again, ready to be submitted
    update_campaign(actor=marketer, campaign=pending, name="Spring sale, calmer")
    pending.refresh_from_db()
    assert pending.state == State.DRAFT
    assert submit_campaign(actor=marketer, campaign=pending).state == State.PENDING_APPROVAL


def test_submitting_notifies_the_approvers_by_email_in_the_sandbox(draft, marketer, approver):
    submit_campaign(actor=marketer, campaign=draft)
    notes = OutboxMessage.objects.filter(to_address=approver.email)
    assert notes.count() == 1
    assert notes.get().subject == "Waiting for your approval: Spring sale"
    # and the author is not notified about her own submission
    assert not OutboxMessage.objects.filter(to_address=marketer.email).exists()


# --- edits after approval -------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    ["content", "audience", "schedule"],
)
def test_editing_after_approval_sends_it_back_to_draft(approved, marketer, newsletter, people, change):
    other_version = make_version(marketer, newsletter, key="other")
    values = {
        "content": {"template_version": other_version},
        "audience": {"excluded_segments": [make_segment("VIPs", people[:1])]},
        "schedule": {"send_mode": Campaign.SendMode.AT, "send_at": timezone.now() + timedelta(days=2)},
    }[change]
    update_campaign(actor=marketer, campaign=approved, **values)
    approved.refresh_from_db()
    assert approved.state == State.DRAFT and approved.approved_by is None
    assert audited(approved, "returned to draft").exists()


def test_editing_a_scheduled_campaign_needs_a_new_approval(scheduled, marketer):
    update_campaign(actor=marketer, campaign=scheduled, variants=[{"subject": "New subject"}])
    scheduled.refresh_from_db()
    assert scheduled.state == State.DRAFT


def test_renaming_an_approved_campaign_keeps_the_approval(approved, marketer):
    update_campaign(actor=marketer, campaign=approved, name="Spring sale (internal name)")
    approved.refresh_from_db()
    assert approved.state == State.APPROVED


def test_a_sent_campaign_is_read_only(sending, marketer):
    Campaign.objects.filter(pk=sending.pk).update(state=State.SENT)  # the end state, reached by the tick elsewhere
    with pytest.raises(CampaignStateError, match="sent campaign is read-only"):
        update_campaign(actor=marketer, campaign=sending, name="Changed")
    sending.refresh_from_db()
    assert sending.name == "Spring sale"


def test_reschedule_only_while_scheduled_and_never_into_the_past(scheduled, approved, marketer):
    later = timezone.now() + timedelta(days=3)
    with pytest.raises(InvalidInput):
        reschedule_campaign(actor=marketer, campaign=scheduled, send_at=timezone.now() - timedelta(hours=1))
    scheduled.refresh_from_db()
    assert scheduled.state == State.SCHEDULED
    start_campaign(actor=None, campaign=scheduled)
    with pytest.raises(CampaignStateError):
        reschedule_campaign(actor=marketer, campaign=scheduled, send_at=later)


def test_rescheduling_moves_the_campaign_and_needs_a_new_approval(scheduled, marketer):
    later = timezone.now() + timedelta(days=3)
    moved = reschedule_campaign(actor=marketer, campaign=scheduled, send_at=later)
    assert moved.send_at == later and moved.state == State.DRAFT and moved.approved_by is None
    assert audited(scheduled, "rescheduled").exists() and audited(scheduled, "returned to draft").exists()


# --- dry run -------------------------------------------------------------------------------
def test_dry_run_counts_each_exclusion_and_renders_five_samples_without_creating_messages(marketer, newsletter, version, settings):
    settings.MAILROOM_FREQUENCY_CAP = 3
    eligible = make_people(newsletter, 7, prefix="ok")
    no_consent = make_people(newsletter, 2, prefix="nc", subscribed=False)
    unsubscribed = make_people(newsletter, 1, prefix="un")
    unsubscribe(actor=None, contact=unsubscribed[0], topic=newsletter)
    suppressed = make_people(newsletter, 2, prefix="sup")
    for person in suppressed:
        suppress_address(actor=None, address=person.email, channel="email", reason="complaint")
    phone_only = create_contact(actor=None, phone="+33612345678", first_name="Noemail")
    busy = make_people(newsletter, 1, prefix="busy")
    for n in range(3):
        enqueue_message(channel="email", contact=busy[0], subject=f"Other {n}", text="Hi", topic=newsletter)
    everyone = make_segment("All", [*eligible, *no_consent, *unsubscribed, *suppressed, *busy])
    everyone_phone = make_segment("Phones", [])

    add_static_members(segment=everyone_phone, identifiers=["+33612345678"], actor=None)
    campaign = new_campaign(marketer, newsletter, everyone, version)
    update_campaign(actor=marketer, campaign=campaign, segments=[everyone, everyone_phone])
    messages_before = OutboxMessage.objects.count()

    result = dry_run(campaign=campaign)

    assert result.as_dict() == {
        "audience": 14,
        "eligible": 7,
        "excluded_consent": 3,
        "suppressed": 2,
        "missing_address": 1,
        "over_frequency_cap": 1,
    }
    assert len(result.samples) == 5
    assert result.samples[0].subject == "News for Ok0"
    assert "Hello Ok0" in result.samples[0].html
    assert OutboxMessage.objects.count() == messages_before
    assert not CampaignRecipient.objects.exists()
    assert phone_only.pk


def test_dry_run_shows_the_problems_of_an_incomplete_campaign(marketer, newsletter, segment):
    campaign = new_campaign(marketer, newsletter, segment, None)
    result = dry_run(campaign=campaign)
    assert "Pick the template version to send." in result.problems
    assert result.samples == []


# --- bad input -----------------------------------------------------------------------------
def test_empty_audience_is_refused_at_submission(marketer, newsletter, version):
    nobody = make_segment("Nobody", [])
    campaign = new_campaign(marketer, newsletter, nobody, version)
    with pytest.raises(InvalidInput, match="empty audience"):
        submit_campaign(actor=marketer, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT


def test_past_send_time_is_refused(marketer, newsletter, segment, version):
    campaign = new_campaign(
        marketer, newsletter, segment, version, send_mode=Campaign.SendMode.AT, send_at=timezone.now() - timedelta(hours=2)
    )
    with pytest.raises(InvalidInput, match="in the past"):
        submit_campaign(actor=marketer, campaign=campaign)


def test_missing_template_version_is_refused(marketer, newsletter, segment):
    campaign = new_campaign(marketer, newsletter, segment, None)
    with pytest.raises(InvalidInput, match="template version"):
        submit_campaign(actor=marketer, campaign=campaign)


def test_marketing_template_without_unsubscribe_link_is_refused(marketer, newsletter, segment):
    bare = make_version(marketer, newsletter, key="bare", body="<p>Buy now</p>")
    campaign = new_campaign(marketer, newsletter, segment, bare)
    with pytest.raises(InvalidInput, match="no unsubscribe link"):
        submit_campaign(actor=marketer, campaign=campaign)


def test_marketing_email_without_postal_address_is_refused(marketer, newsletter, segment, version, settings):
    settings.MAILROOM_SENDER_ADDRESS = ""
    campaign = new_campaign(marketer, newsletter, segment, version)
    with pytest.raises(InvalidInput, match="postal address"):
        submit_campaign(actor=marketer, campaign=campaign)


def test_sending_is_blocked_when_the_postal_address_disappears_before_start(scheduled, settings, marketer):
    # given an approved, scheduled campaign / when the postal address is removed before it starts
    settings.MAILROOM_SENDER_ADDRESS = ""
    campaign = start_campaign(actor=None, campaign=scheduled)
    # then it does not send: back to draft, its author told, no recipient created
    assert campaign.state == State.DRAFT
    assert not CampaignRecipient.objects.exists()
    assert OutboxMessage.objects.filter(to_address=marketer.email, subject="Blocked: Spring sale").exists()


def test_ab_test_needs_two_to_four_variants(marketer, newsletter, segment, version):
    campaign = new_campaign(marketer, newsletter, segment, version, ab_test_share=20, variants=[{"subject": "Only one"}])
    with pytest.raises(InvalidInput, match="two to four variants"):
        submit_campaign(actor=marketer, campaign=campaign)
    with pytest.raises(InvalidInput):
        update_campaign(actor=marketer, campaign=campaign, variants=[{"subject": str(n)} for n in range(5)])


@pytest.mark.parametrize(
    "values",
    [{"name": " "}, {"channel": "fax"}, {"throttle_per_hour": 0}, {"ab_test_share": 95}, {"send_mode": "whenever"}, {"colour": "red"}],
)
def test_bad_values_are_refused_and_change_nothing(draft, marketer, values):
    with pytest.raises(InvalidInput):
        update_campaign(actor=marketer, campaign=draft, **values)
    draft.refresh_from_db()
    assert draft.name == "Spring sale" and draft.channel == "email"
