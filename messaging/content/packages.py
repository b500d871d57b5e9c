"""Template packages: a template key with all its languages as one zip, in the catalog's
layout (messaging.content.catalog), and back.

    welcome/manifest.json   {"format": 1, "key": "welcome", "name": …, "category": …,
                             "topic": …, "channel": …, "whatsapp_template_sid": …,
                             "whatsapp_variables": […], "languages": {"fr": {"name": …}}}
    welcome/en.mjml         --- header (name, subject, preheader…) --- then the body
    welcome/en.txt          the text version (optional)
    welcome/en.sms          the SMS / push text (optional)

Several keys in one zip are several folders. Importing never rewrites history: a new key
makes new templates, an existing key gets a new version per language (through the same
actions and checks as the editor), everything in one transaction.
"""

import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _

from messaging.content.catalog import MANIFEST, MANIFEST_FORMAT, CatalogEntry, Package, read_zip, save_entry_version, settings_of
from messaging.content.versions import (
    activate_template_version,
    create_template,
    update_template,
)
from messaging.errors import InvalidInput
from messaging.models import Template, Topic

# The zip as uploaded (unpacked limits: catalog.read_zip). The console's confirmation posts it
# back in base64, which must stay under Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB).
MAX_UPLOAD_BYTES = 3 * 2**19  # 1.5 MB


def export_package(templates: Iterable[Template]) -> bytes:
    """A zip with one folder per key of `templates`, each holding every language of that key
    (its active version, else its latest)."""
    keys = sorted({template.key for template in templates})
    rows = Template.objects.filter(key__in=keys).select_related("topic", "active_version").order_by("key", "locale")
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in keys:
            languages = [template for template in rows if template.key == key]
            for name, text in package_files(languages).items():
                archive.writestr(f"{key}/{name}", text)
    return buffer.getvalue()


def export_filename(templates: Iterable[Template]) -> str:
    keys = sorted({template.key for template in templates})
    return f"{keys[0]}.zip" if len(keys) == 1 else "templates.zip"


def package_files(languages: list[Template]) -> dict[str, str]:
    """The files of one key's package: {file name: text}."""
    first = languages[0]
    manifest = {
        "format": MANIFEST_FORMAT,
        "key": first.key,
        "name": first.name,
        "category": first.category,
        "topic": first.topic.key if first.topic else "",
        "channel": first.channel,
        "whatsapp_template_sid": first.whatsapp_template_sid,
        "whatsapp_variables": first.whatsapp_variables or [],
        "languages": {},
    }
    files = {}
    for template in languages:
        manifest["languages"][template.locale] = {
            name: getattr(template, name) for name in ("name", "whatsapp_template_sid", "whatsapp_variables")
        } | {"topic": template.topic.key if template.topic else ""}
        version = template.active_version or template.versions.order_by("-number").first()
        if version is None:
            continue
        header = f"---\nsubject: {_one_line(version.subject)}\npreheader: {_one_line(version.preheader)}\n---\n"
        files[f"{template.locale}.{version.body_format}"] = header + version.body
        if version.text_body:
            files[f"{template.locale}.txt"] = version.text_body
        if version.sms_body:
            files[f"{template.locale}.sms"] = version.sms_body
    return {MANIFEST: json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", **files}


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class PlannedChange:
    key: str
    locale: str
    action: str  # "create", "new version", "unchanged"
    version: int | None = None
    file: str = ""


@dataclass
class ImportReport:
    changes: list[PlannedChange] = field(default_factory=list)
    dry_run: bool = False

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)


CREATE, NEW_VERSION, UNCHANGED = "create", "new version", "unchanged"


def import_package(
    *, actor: AbstractBaseUser | None, data: bytes, name: str = "package.zip", dry_run: bool = False, activate: bool = False
) -> ImportReport:
    """Load a package zip: new keys become templates (their version active), existing ones
    get a new version per changed language (active only with `activate`). Any error names
    its file and leaves nothing written; `dry_run` runs every check and writes nothing."""
    packages = read_zip(data, name=name)
    report = ImportReport(dry_run=dry_run)
    with transaction.atomic():
        for package in packages:
            for entry in package.entries:
                report.changes.append(_import_entry(package, entry, actor=actor, activate=activate))
        if dry_run:
            transaction.set_rollback(True)
    return report


def _import_entry(package: Package, entry: CatalogEntry, *, actor, activate: bool) -> PlannedChange:
    values = settings_of(package, entry)
    topic = Topic.objects.filter(key=values["topic"]).first() if values["topic"] else None
    if values["topic"] and topic is None:
        raise InvalidInput(_("%(file)s: unknown topic “%(topic)s”.") % {"file": entry.path, "topic": values["topic"]})
    for part, value, limit in (
        ("name", values["name"], 200),
        ("subject", entry.header.get("subject", ""), 998),
        ("preheader", entry.header.get("preheader", ""), 300),
    ):
        if len(value) > limit:
            raise InvalidInput(
                _("%(file)s: the %(part)s is longer than %(max)s characters.") % {"file": entry.path, "part": part, "max": limit}
            )
    template = Template.objects.filter(key=entry.key, locale=entry.locale).first()
    created = template is None
    try:
        if created:
            template = create_template(
                actor=actor,
                key=entry.key,
                locale=entry.locale,
                name=values["name"],
                category=values["category"],
                channel=values["channel"],
                topic=topic,
            )
            if values["whatsapp_template_sid"] or values["whatsapp_variables"]:
                fields = {name: values[name] for name in ("whatsapp_template_sid", "whatsapp_variables")}
                template = update_template(actor=actor, template=template, **fields)
        elif template.channel != values["channel"]:
            raise InvalidInput(
                _("The template is a %(have)s template; the package says %(want)s.") % {"have": template.channel, "want": values["channel"]}
            )
        latest = template.versions.order_by("-number").first()
        version = save_entry_version(
            actor=actor, template=template, entry=entry, note=_("Imported from %(file)s") % {"file": str(entry.path)}
        )
        if created or (activate and template.active_version_id != version.pk):
            activate_template_version(actor=actor, version=version)
    except InvalidInput as error:
        raise InvalidInput(f"{entry.path}: {error}", code=error.code, fields=error.fields) from error
    action = CREATE if created else (UNCHANGED if latest is not None and latest.pk == version.pk else NEW_VERSION)
    return PlannedChange(key=entry.key, locale=entry.locale, action=action, version=version.number, file=str(entry.path))
