"""Template actions: save a version, activate, deactivate, duplicate, restore, diff."""

import difflib
import hashlib
import json

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from messaging.audit import record_audit
from messaging.contact_fields import normalise_locale
from messaging.content.merge_tags import sample_context
from messaging.content.rendering import TOO_MUCH_WORK, check_source, compile_body, parse_parts, render_parts, render_version, too_much_work
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import Template, TemplateVersion
from messaging.models.validation import check_approved_template

CONTENT_FIELDS = ("subject", "preheader", "body_format", "body", "text_body", "sms_body")


def content_hash(content: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps([content.get(f, "") for f in CONTENT_FIELDS]).encode()).hexdigest()


@transaction.atomic
def create_template(
    *,
    actor: AbstractBaseUser | None,
    key: str,
    name: str,
    locale: str = "en",
    category: str = "transactional",
    channel: str = "email",
    topic=None,
) -> Template:
    try:
        locale = normalise_locale(locale)
    except Exception as error:
        raise InvalidInput(" ".join(getattr(error, "messages", [str(error)])), fields={"locale": [str(error)]}) from error
    if category not in Template.Category.values:
        raise InvalidInput(_("Unknown category “%(category)s”.") % {"category": category})
    try:
        with transaction.atomic():
            template = Template.objects.create(key=key, name=name, locale=locale, category=category, channel=channel, topic=topic)
    except IntegrityError as error:
        raise InvalidInput(
            _("A template “%(key)s” already exists in this language.") % {"key": key}, fields={"key": [_("Already used.")]}
        ) from error
    record_audit(actor=actor, verb="created", target=template)
    return template


TEMPLATE_SETTINGS = ("name", "category", "topic", "whatsapp_template_sid", "whatsapp_variables")  # key, language, channel: fixed


@transaction.atomic
def update_template(*, actor: AbstractBaseUser | None, template: Template, **values) -> Template:
    """Rename a template, or change its category or topic (its content lives in versions)."""
    unknown = set(values) - set(TEMPLATE_SETTINGS)
    if unknown:
        raise InvalidInput(
            _("Only the name, category and topic of a template can change (not %(names)s).") % {"names": ", ".join(sorted(unknown))},
            fields={name: [_("Cannot be changed.")] for name in unknown},
        )
    if "name" in values and not str(values["name"] or "").strip():
        raise InvalidInput(_("A template needs a name."), fields={"name": [_("This field is required.")]})
    if "category" in values and values["category"] not in Template.Category.values:
        raise InvalidInput(_("Unknown category “%(category)s”.") % {"category": values["category"]}, fields={"category": [_("Unknown.")]})
    template = Template.objects.select_for_update().get(pk=template.pk)
    before = {name: getattr(template, "topic_id" if name == "topic" else name) for name in TEMPLATE_SETTINGS}
    for name, value in values.items():
        setattr(template, name, value.strip() if name == "name" else value)
    try:
        check_approved_template(template)  # the WhatsApp approved template, when named
    except ValidationError as error:
        raise InvalidInput.from_validation_error(error) from None
    after = {name: getattr(template, "topic_id" if name == "topic" else name) for name in TEMPLATE_SETTINGS}
    changes = {name: {"before": before[name], "after": after[name]} for name in before if before[name] != after[name]}
    if changes:
        template.save(update_fields=list(values))
        record_audit(actor=actor, verb="changed", target=template, changes=changes)
    return template


@transaction.atomic
def save_template_version(
    *,
    actor: AbstractBaseUser | None,
    template: Template,
    subject: str = "",
    preheader: str = "",
    body_format: str = TemplateVersion.Format.MJML,
    body: str = "",
    text_body: str = "",
    sms_body: str = "",
    note: str = "",
) -> TemplateVersion:
    """Check, compile and store a new draft version. Saving unchanged content returns the
    latest version instead of a copy. Nothing is written when any part is invalid."""
    if body_format not in TemplateVersion.Format.values:
        raise InvalidInput(_("Unknown body format “%(format)s”.") % {"format": body_format})
    content = {
        "subject": subject,
        "preheader": preheader,
        "body_format": body_format,
        "body": body,
        "text_body": text_body,
        "sms_body": sms_body,
    }
    for part in ("subject", "preheader", "body", "text_body", "sms_body"):
        check_source(content[part], part=part)
    if not (body or text_body or sms_body):
        raise InvalidInput(_("A template needs a body, a text version or an SMS text."), fields={"body": [_("This field is required.")]})
    html, text = compile_body(body_format=body_format, body=body, text_body=text_body)
    check_source(html, part="body")  # MJML may move tags around: the result must still be valid
    check_render_work(subject=subject, preheader=preheader, html=html, text=text, sms=sms_body)
    template = Template.objects.select_for_update().get(pk=template.pk)
    digest = content_hash(content)
    latest = template.versions.order_by("-number").first()
    if latest is not None and latest.content_hash == digest:
        return latest
    number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = TemplateVersion.objects.create(
        template=template,
        number=number,
        **content,
        note=note[:300],
        author=actor if actor is not None and actor.is_authenticated else None,
        content_hash=digest,
        compiled_html=html,
        compiled_text=text,
    )
    record_audit(
        actor=actor,
        verb="saved version",
        target=template,
        changes={"version": {"before": latest.number if latest else None, "after": number}},
    )
    return version


FIELD_OF_PART = {"html": "body", "text": "text_body", "sms": "sms_body"}


def check_render_work(**parts: str) -> None:
    """Render the compiled parts once with the editor's sample data: a version whose loops
    exceed the render budget (rendering.MessageEngine) is refused at save, not found at
    send. Other render errors depend on the data and are the preview's to show."""
    try:
        render_parts(parse_parts(**parts), sample_context())
    except InvalidInput as error:
        if error.code == TOO_MUCH_WORK:
            part = next(iter(error.fields), "html")
            raise too_much_work(part, field=FIELD_OF_PART.get(part, part)) from error
    except Exception:  # the same as before this check: saving never rendered
        pass


@transaction.atomic
def activate_template_version(*, actor: AbstractBaseUser | None, version: TemplateVersion) -> Template:
    template = Template.objects.select_for_update().get(pk=version.template_id)
    if template.archived_at is not None:  # messaging.content.retirement
        raise NotAllowed(_("The template “%(name)s” is archived: unarchive it before activating a version.") % {"name": template})
    before = template.active_version.number if template.active_version else None
    template.active_version, template.is_active = version, True
    template.save(update_fields=["active_version", "is_active"])
    record_audit(actor=actor, verb="activated", target=template, changes={"active_version": {"before": before, "after": version.number}})
    return template


@transaction.atomic
def save_and_activate_template_version(
    *, actor: AbstractBaseUser | None, template: Template, note: str = "", **content: str
) -> TemplateVersion:
    """Save the content (as `save_template_version` does) and make that version the active
    one, in one transaction: both happen or neither. Already active: nothing more to do."""
    version = save_template_version(actor=actor, template=template, note=note, **content)
    current = Template.objects.filter(pk=template.pk).values_list("active_version", "is_active").get()
    if current != (version.pk, True):
        activate_template_version(actor=actor, version=version)
    return version


@transaction.atomic
def deactivate_template(*, actor: AbstractBaseUser | None, template: Template) -> Template:
    template = Template.objects.select_for_update().get(pk=template.pk)
    if template.is_active:
        template.is_active = False
        template.save(update_fields=["is_active"])
        record_audit(actor=actor, verb="deactivated", target=template, changes={"is_active": {"before": True, "after": False}})
    return template


def _content_of(version: TemplateVersion) -> dict[str, str]:
    return {field: getattr(version, field) for field in CONTENT_FIELDS}


@transaction.atomic
def restore_template_version(*, actor: AbstractBaseUser | None, version: TemplateVersion) -> TemplateVersion:
    """An old version's content as a new draft (history is never rewritten)."""
    latest = version.template.versions.order_by("-number").first()
    if latest is not None and latest.content_hash == version.content_hash:
        raise NotAllowed(_("The latest version already has this content."))
    return save_template_version(
        actor=actor, template=version.template, note=_("Restored from version %(n)s") % {"n": version.number}, **_content_of(version)
    )


@transaction.atomic
def duplicate_template(*, actor: AbstractBaseUser | None, template: Template, key: str, name: str = "") -> Template:
    source = template.active_version or template.versions.order_by("-number").first()
    copy = create_template(
        actor=actor,
        key=key,
        name=name or _("Copy of %(name)s") % {"name": template.name},
        locale=template.locale,
        category=template.category,
        channel=template.channel,
        topic=template.topic,
    )
    if source is not None:
        save_template_version(
            actor=actor,
            template=copy,
            note=_("Copied from %(name)s v%(n)s") % {"name": template.name, "n": source.number},
            **_content_of(source),
        )
    return copy


def pick_template(*, key: str, locale: str | None) -> Template | None:
    """The active template for a key in the contact's language, else the default language."""
    candidates = {t.locale: t for t in Template.objects.filter(key=key, is_active=True, active_version__isnull=False)}
    for wanted in (locale, settings.LANGUAGE_CODE):
        if wanted in candidates:
            return candidates[wanted]
    return next(iter(candidates.values()), None)


def preview_version(*, version: TemplateVersion, contact=None, context: dict | None = None):
    """Render a saved version without sending: merge-tag samples, overlaid with a real
    contact's values and then `context`. Returns a Rendered (its `missing` names unknown tags)."""

    return render_version(version, sample_context(contact) | dict(context or {}))


def diff_versions(*, old: TemplateVersion, new: TemplateVersion, field: str = "body") -> str:
    """A side-by-side, line-level HTML table (difflib) of one field of two versions."""
    source_field = {"rendered": "compiled_html"}.get(field, field)
    old_lines = _lines(getattr(old, source_field), rendered=field == "rendered")
    new_lines = _lines(getattr(new, source_field), rendered=field == "rendered")
    return difflib.HtmlDiff(tabsize=2, wrapcolumn=80).make_table(
        old_lines, new_lines, fromdesc=_("Version %(n)s") % {"n": old.number}, todesc=_("Version %(n)s") % {"n": new.number}, context=False
    )


def _lines(text: str, *, rendered: bool) -> list[str]:
    if rendered:  # one tag per line, so a changed word shows as a changed line
        text = text.replace("><", ">\n<")
    return text.splitlines()
