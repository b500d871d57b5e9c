"""The dry run: what sending would do now — the eligibility counts (`audience`), the
problems that stop the campaign (`guardrails`), the language split (`languages`) and
sample renders for a few eligible recipients. Read-only: no recipient, no message."""

from django.template import TemplateSyntaxError

from marketing.campaigns.audience import DryRun, SampleRender, count_eligibility, with_eligibility
from marketing.campaigns.guardrails import campaign_problems
from marketing.campaigns.languages import contact_version, language_warnings
from marketing.models import Campaign
from messaging.content.merge_tags import contact_context
from messaging.content.rendering import check_source, engine, render_parts, render_version
from messaging.errors import InvalidInput
from messaging.models import Channel, Contact

SAMPLE_SIZE = 5


def render_for(campaign: Campaign, contact: Contact, variant=None) -> SampleRender:
    version = (variant.template_version if variant and variant.template_version_id else None) or campaign.template_version
    version = contact_version(campaign, version, contact.locale)  # the contact's language, as the fan-out picks it
    context = contact_context(contact) | (campaign.context or {})  # as the sending worker merges it
    try:
        rendered = render_version(version, context)
        subject = rendered.subject
        if variant is not None and variant.subject:
            check_source(variant.subject, part="subject")  # a row stored before variant subjects were checked
            subject = render_parts({"subject": engine(html=False).from_string(variant.subject)}, context).subject
    except (InvalidInput, TemplateSyntaxError) as error:
        # Shown in the sample (and listed in the dry run's problems), never a server error.
        return SampleRender(contact=str(contact), subject="", html="", text="", variant=variant.label if variant else "", error=str(error))
    return SampleRender(
        contact=str(contact),
        subject=subject,
        html=rendered.html if campaign.channel == Channel.EMAIL else "",
        text=rendered.text if campaign.channel == Channel.EMAIL else (rendered.sms or rendered.text),
        variant=variant.label if variant else "",
        missing=rendered.missing,
    )


def dry_run(*, campaign: Campaign, sample_size: int = SAMPLE_SIZE) -> DryRun:
    """What sending would do now: counts of eligible and excluded contacts, and sample
    renders for a few eligible recipients. Read-only: no recipient, no message."""
    result = count_eligibility(campaign)
    result.problems = campaign_problems(campaign, check_audience=False)
    if campaign.template_version_id is None:
        return result
    result.languages, result.missing_languages, result.warnings = language_warnings(campaign)
    variants = list(campaign.variants.select_related("template_version")) or [None]
    sample = with_eligibility(campaign).filter(skip="").order_by("pk")[:sample_size]
    for index, contact in enumerate(sample):
        result.samples.append(render_for(campaign, contact, variants[index % len(variants)]))
    return result
