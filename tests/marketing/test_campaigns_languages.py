"""Per-contact language in campaigns (issue 17, part 5): one campaign sends each contact the
template's variant in their language, falling back as the transactional path does; the dry
run shows the split by language and warns about languages without a variant; the version of
each language is pinned at submission, so a variant activated after approval is not sent."""

import pytest

from marketing.campaigns.actions import approve_campaign, schedule_campaign, start_campaign, submit_campaign
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.preview import dry_run
from marketing.campaigns.queries import campaign_report
from marketing.models import Campaign
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.models import DeliveryEvent, OutboxMessage, SandboxMessage
from tests.marketing.conftest import make_people, make_segment, new_campaign, wizard_form

pytestmark = pytest.mark.django_db

EN_BODY = (
    '<html><body><p>Hello {{ contact.first_name }}, spring sale!</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)
FR_BODY = (
    '<html><body><p>Bonjour {{ contact.first_name }}, soldes de printemps !</p><p><a href="{{ unsubscribe_url }}">Désabonnement</a></p>'
    "</body></html>"
)


def variant(actor, topic, *, locale, subject, body, key="spring-lang"):
    template = create_template(actor=actor, key=key, name=f"Spring {locale}", locale=locale, category="newsletter", topic=topic)
    version = save_template_version(actor=actor, template=template, subject=subject, body_format="html", body=body)
    activate_template_version(actor=actor, version=version)
    return version


@pytest.fixture
def en_version(marketer, newsletter):
    return variant(marketer, newsletter, locale="en", subject="Spring sale for {{ contact.first_name }}", body=EN_BODY)


@pytest.fixture
def fr_version(marketer, newsletter, en_version):
    return variant(marketer, newsletter, locale="fr", subject="Soldes pour {{ contact.first_name }}", body=FR_BODY)


@pytest.fixture
def bilingual(newsletter):
    (anne,) = make_people(newsletter, 1, prefix="anne", locale="en")
    (julie,) = make_people(newsletter, 1, prefix="julie", locale="fr")
    return anne, julie


def approve_and_start(campaign, marketer, approver, between=None):
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    if between:
        between()
    schedule_campaign(actor=marketer, campaign=campaign)
    return start_campaign(actor=None, campaign=campaign)


def received(campaign) -> dict[str, SandboxMessage]:
    return {m.to_address: m for m in SandboxMessage.objects.filter(message__campaign_recipient__campaign=campaign)}


def test_a_french_contact_gets_the_french_variant_and_an_english_contact_the_english_one(
    marketer, approver, newsletter, en_version, fr_version, bilingual
):
    anne, julie = bilingual
    campaign = new_campaign(marketer, newsletter, make_segment("Both", [anne, julie]), en_version)
    campaign = approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    mail = received(campaign)
    assert mail[julie.email].subject == "Soldes pour Julie0"
    assert "Bonjour Julie0, soldes de printemps" in mail[julie.email].body_html and "spring sale" not in mail[julie.email].body_html
    assert mail[anne.email].subject == "Spring sale for Anne0"
    assert "Hello Anne0, spring sale" in mail[anne.email].body_html and "Bonjour" not in mail[anne.email].body_html


def test_pinning_the_french_template_still_sends_english_to_english_contacts(
    marketer, approver, newsletter, en_version, fr_version, bilingual
):
    anne, julie = bilingual
    campaign = approve_and_start(new_campaign(marketer, newsletter, make_segment("Both", [anne, julie]), fr_version), marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    mail = received(campaign)
    assert mail[julie.email].subject == "Soldes pour Julie0" and mail[anne.email].subject == "Spring sale for Anne0"


def test_the_dry_run_shows_the_split_by_language(marketer, newsletter, en_version, fr_version, bilingual):
    campaign = new_campaign(marketer, newsletter, make_segment("Both", list(bilingual)), en_version)
    result = dry_run(campaign=campaign)
    assert result.languages == {"en": 1, "fr": 1}
    assert result.missing_languages == [] and result.warnings == []
    subjects = sorted(sample.subject for sample in result.samples)
    assert subjects == ["Soldes pour Julie0", "Spring sale for Anne0"]


def test_a_language_without_a_variant_falls_back_and_the_dry_run_and_wizard_warn(
    client, marketer, approver, newsletter, en_version, bilingual
):
    anne, julie = bilingual
    segment = make_segment("Both", [anne, julie])
    campaign = new_campaign(marketer, newsletter, segment, en_version)
    result = dry_run(campaign=campaign)
    assert result.languages == {"en": 1, "fr": 1} and result.missing_languages == ["fr"]
    assert any("fr" in warning for warning in result.warnings)
    assert result.problems == []  # a warning, not an error: it can still be submitted
    client.force_login(marketer)
    page = client.get(f"/admin/marketing/campaign/{campaign.pk}/dry-run/")
    assert page.status_code == 200 and b"data-language-warning" in page.content

    response = client.post(
        f"/admin/marketing/campaign/{campaign.pk}/edit/", wizard_form(newsletter, segment, en_version, name="Renamed"), follow=True
    )
    assert response.status_code == 200
    assert any("fr" in str(m) for m in response.context["messages"]), "the wizard warns about the language without a variant"
    campaign = approve_and_start(Campaign.objects.get(pk=campaign.pk), marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    mail = received(campaign)
    assert mail[julie.email].subject == "Spring sale for Julie0"  # the fallback: the default language


def test_a_french_version_activated_after_approval_is_not_sent(marketer, approver, newsletter, en_version, fr_version, bilingual):
    anne, julie = bilingual
    campaign = new_campaign(marketer, newsletter, make_segment("Both", [anne, julie]), en_version)

    def new_unapproved_french():
        newer = save_template_version(
            actor=marketer, template=fr_version.template, subject="NON APPROUVÉ {{ contact.first_name }}", body_format="html", body=FR_BODY
        )
        activate_template_version(actor=marketer, version=newer)

    campaign = approve_and_start(campaign, marketer, approver, between=new_unapproved_french)
    assert campaign.state == Campaign.State.SENDING
    fan_out(campaign=campaign)
    send_due_messages()
    mail = received(campaign)
    assert mail[julie.email].subject == "Soldes pour Julie0"
    assert not SandboxMessage.objects.filter(subject__startswith="NON APPROUVÉ").exists()


def test_a_language_variant_without_an_unsubscribe_link_cannot_be_submitted(marketer, newsletter, en_version, bilingual):
    variant(marketer, newsletter, locale="fr", subject="Soldes", body="<html><body><p>Bonjour, pas de lien</p></body></html>")
    campaign = new_campaign(marketer, newsletter, make_segment("Both", list(bilingual)), en_version)
    with pytest.raises(InvalidInput, match="unsubscribe"):
        submit_campaign(actor=marketer, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT and campaign.language_versions == {}


def test_the_overview_shows_the_pinned_version_of_each_language(client, marketer, approver, newsletter, en_version, fr_version, bilingual):
    campaign = new_campaign(marketer, newsletter, make_segment("Both", list(bilingual)), en_version)
    submit_campaign(actor=marketer, campaign=campaign)
    newer = save_template_version(actor=marketer, template=fr_version.template, subject="Nouveau", body_format="html", body=FR_BODY)
    activate_template_version(actor=marketer, version=newer)
    client.force_login(approver)
    page = client.get(f"/admin/marketing/campaign/{campaign.pk}/overview/").content.decode()
    assert 'data-language="fr"' in page and f"fr: {fr_version.template} v{fr_version.number}" in page


def test_the_report_splits_the_figures_by_the_language_each_contact_was_sent(
    marketer, approver, newsletter, en_version, fr_version, bilingual
):
    from django.utils import timezone

    anne, julie = bilingual
    campaign = approve_and_start(new_campaign(marketer, newsletter, make_segment("Both", [anne, julie]), en_version), marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    sent = {m.contact_id: m for m in OutboxMessage.objects.filter(campaign_recipient__campaign=campaign)}
    now = timezone.now()
    for kind in ("opened", "clicked", "unsubscribed"):
        DeliveryEvent.objects.create(message=sent[julie.pk], kind=kind, occurred_at=now)
    DeliveryEvent.objects.create(message=sent[anne.pk], kind="opened", occurred_at=now)
    DeliveryEvent.objects.create(message=sent[anne.pk], kind="clicked", occurred_at=now, is_automated=True)  # a link scanner
    # Julie switches to English afterwards: her mail was French, and counts as French
    julie.locale = "en"
    julie.save(update_fields=["locale"])
    report = campaign_report(campaign)
    figures = [(row["locale"], row["sent"], row["opens"], row["clicks"], row["unsubscribes"]) for row in report["languages"]]
    assert figures == [("en", 1, 1, 0, 0), ("fr", 1, 1, 1, 1)]
    assert (report["opens"], report["clicks"], report["unsubscribes"]) == (2, 1, 1)
