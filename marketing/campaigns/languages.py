"""Per-contact language in campaigns (issue 17, part 5).

A template `key` has one Template per language; a campaign pins one version of one of them.
Each contact gets the variant in their language, falling back as the transactional path
does (`messaging.content.versions.pick_template`): the contact's language, else the default
language (settings.LANGUAGE_CODE), else the pinned version itself.

What a second person approves is the content of every language variant, so the version of
each language is pinned when the campaign is submitted (`pin_languages`, stored in
`Campaign.language_versions` as {"<pinned version id>": {"<locale>": version id}}); a variant
activated later is never sent under that approval. The fan-out chooses per row in SQL
(`metadata_case_sql`: one CASE on the contact's language over the precomputed metadata of
each language), so a million recipients still cost no Python per row.
"""

from django.conf import settings
from django.db.models import Count
from django.utils.translation import gettext as _

from marketing.campaigns.audience import with_eligibility
from marketing.models import Campaign
from messaging.models import Template, TemplateVersion


def campaign_versions(campaign: Campaign) -> list[TemplateVersion]:
    """The pinned versions: the campaign's and each A/B variant's own, without repeats."""
    versions, seen = [], set()
    candidates = [campaign.template_version] + [v.template_version for v in campaign.variants.select_related("template_version__template")]
    for version in candidates:
        if version is not None and version.pk not in seen:
            seen.add(version.pk)
            versions.append(version)
    return versions


def language_variants(version: TemplateVersion) -> dict[str, int]:
    """{locale: version id} of every active language variant of the version's template key,
    with the pinned version itself for its own language."""
    template = version.template
    variants = dict(
        Template.objects.filter(key=template.key, channel=template.channel, is_active=True, active_version__isnull=False)
        .exclude(pk=template.pk)
        .values_list("locale", "active_version_id")
    )
    variants[template.locale] = version.pk
    return variants


def pin_languages(campaign: Campaign) -> dict[str, dict[str, int]]:
    """Fix the version of each language for every pinned version (at submission)."""
    return {str(version.pk): language_variants(version) for version in campaign_versions(campaign)}


def pinned_variants(campaign: Campaign, version_id: int) -> dict[str, int]:
    """The pinned {locale: version id} of a version; a campaign pinned before languages
    were (or a draft) sends the pinned version to everyone."""
    return dict((campaign.language_versions or {}).get(str(version_id)) or {})


def fallback_version(variants: dict[str, int], version_id: int) -> int:
    return variants.get(settings.LANGUAGE_CODE, version_id)


def version_for(variants: dict[str, int], version_id: int, locale: str | None) -> int:
    """Python twin of the fan-out's CASE, for one contact (dry-run samples)."""
    return variants.get(locale or "", fallback_version(variants, version_id))


def metadata_case_sql(variants: dict[str, int], version_id: int, metadata_of, json_cast) -> tuple[str, list]:
    """SQL choosing the row's metadata by `c.locale`: `metadata_of(version id)` gives the JSON
    text of each, `json_cast` wraps a placeholder for the database's JSON type."""
    fallback = fallback_version(variants, version_id)
    whens = [(locale, vid) for locale, vid in sorted(variants.items()) if vid != fallback]
    if not whens:
        return json_cast("%s"), [metadata_of(fallback)]
    sql = "CASE c.locale " + " ".join(f"WHEN %s THEN {json_cast('%s')}" for _ in whens) + f" ELSE {json_cast('%s')} END"
    params = [p for locale, vid in whens for p in (locale, metadata_of(vid))] + [metadata_of(fallback)]
    return sql, params


def language_split(campaign: Campaign) -> dict[str, int]:
    """Eligible contacts per language, e.g. {"en": 1, "fr": 1}."""
    rows = with_eligibility(campaign).filter(skip="").order_by().values("locale").annotate(n=Count("pk"))
    return {row["locale"]: row["n"] for row in sorted(rows, key=lambda r: r["locale"])}


def current_variants(campaign: Campaign, version: TemplateVersion) -> dict[str, int]:
    """The pinned variants once submitted; the template's current ones while a draft."""
    if campaign.language_versions and campaign.state not in (Campaign.State.DRAFT, Campaign.State.REJECTED):
        variants = pinned_variants(campaign, version.pk)
        variants.setdefault(version.template.locale, version.pk)
        return variants
    return language_variants(version)


def missing_languages(campaign: Campaign, split: dict[str, int] | None = None) -> list[str]:
    """Languages of the audience with no variant of the campaign's template (they get the
    fallback). Uses the pinned variants once submitted, else the current ones."""
    split = language_split(campaign) if split is None else split
    missing: set[str] = set()
    for version in campaign_versions(campaign):
        variants = current_variants(campaign, version)
        missing |= {locale for locale in split if locale not in variants}
    return sorted(missing)


def contact_version(campaign: Campaign, version: TemplateVersion, locale: str | None) -> TemplateVersion:
    """The version a contact in `locale` gets (pinned once submitted, else current variants)."""
    variants = current_variants(campaign, version)
    chosen = version_for(variants, version.pk, locale)
    if chosen == version.pk:
        return version
    return TemplateVersion.objects.select_related("template").filter(pk=chosen).first() or version


def language_warnings(campaign: Campaign) -> tuple[dict[str, int], list[str], list[str]]:
    """(split by language, languages without a variant, the warnings to show)."""
    if campaign.template_version_id is None:
        return {}, [], []
    split = language_split(campaign)
    missing = missing_languages(campaign, split)
    warnings = [
        _("%(n)s contact(s) in “%(language)s” get the fallback language: the template has no “%(language)s” variant.")
        % {"n": split[locale], "language": locale}
        for locale in missing
    ]
    return split, missing, warnings


def variant_versions(campaign: Campaign) -> list[TemplateVersion]:
    """The language variants' versions (pinned once submitted) other than the pinned ones:
    approval covers them, so the content guardrails check them too."""
    pinned = campaign_versions(campaign)
    own = {version.pk for version in pinned}
    ids = {vid for version in pinned for vid in current_variants(campaign, version).values()} - own
    return list(TemplateVersion.objects.filter(pk__in=ids).select_related("template").order_by("pk"))


def language_rows(campaign: Campaign) -> list[tuple[str, TemplateVersion]]:
    """(locale, version) sent for the campaign's own version, for the overview (what is approved)."""
    if campaign.template_version is None:
        return []
    variants = current_variants(campaign, campaign.template_version)
    versions = TemplateVersion.objects.select_related("template").in_bulk(set(variants.values()))
    return [(locale, versions[vid]) for locale, vid in sorted(variants.items()) if vid in versions]
