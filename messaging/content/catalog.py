"""The template catalog: files under templates/email/<key>/<locale>.mjml (or .html), each
with a small header, plus optional <locale>.txt and <locale>.sms parts. `sync_catalog`
loads them; running it again creates a version only where a file changed.

    ---
    name: Verify your email address
    category: transactional
    topic: account
    subject: Verify your email, {{ contact.first_name|default:"there" }}
    preheader: One click and you are in
    ---
    <mjml> … </mjml>
"""

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.errors import InvalidInput
from messaging.models import Template, Topic

HEADER_KEYS = {"name", "category", "topic", "subject", "preheader", "channel"}


def catalog_root() -> Path:
    return Path(settings.BASE_DIR) / "templates" / "email"


@dataclass
class CatalogEntry:
    key: str
    locale: str
    header: dict[str, str]
    body_format: str
    body: str
    text_body: str
    sms_body: str
    path: Path


def parse_entry(path: Path) -> CatalogEntry:
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---\n"):
        raise InvalidInput(_("%(path)s: the file must start with a --- header.") % {"path": path})
    head, _sep, body = raw[4:].partition("\n---\n")
    header = {}
    for number, line in enumerate(head.splitlines(), start=2):
        name, colon, value = line.partition(":")
        if not colon or name.strip() not in HEADER_KEYS:
            raise InvalidInput(
                _("%(path)s line %(line)s: expected one of %(keys)s")
                % {"path": path, "line": number, "keys": ", ".join(sorted(HEADER_KEYS))}
            )
        header[name.strip()] = value.strip()
    sibling = path.with_suffix
    return CatalogEntry(
        key=path.parent.name,
        locale=path.stem,
        header=header,
        body_format="mjml" if path.suffix == ".mjml" else "html",
        body=body.strip() + "\n" if body.strip() else "",
        text_body=sibling(".txt").read_text(encoding="utf-8") if sibling(".txt").exists() else "",
        sms_body=sibling(".sms").read_text(encoding="utf-8").strip() if sibling(".sms").exists() else "",
        path=path,
    )


def catalog_files(root: Path | None = None) -> list[Path]:
    root = root or catalog_root()
    return [path for path in sorted(root.glob("*/*")) if path.suffix in (".mjml", ".html")]


def catalog_entries(root: Path | None = None) -> list[CatalogEntry]:
    return [parse_entry(path) for path in catalog_files(root)]


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def sync_catalog(*, actor=None, root: Path | None = None) -> SyncReport:
    """Load every catalog file; each file is its own transaction, so one bad file does not
    stop the others. Raises one InvalidInput naming every bad file at the end."""
    report = SyncReport()
    for path in catalog_files(root):
        try:
            with transaction.atomic():
                _sync_entry(parse_entry(path), actor, report)
        except InvalidInput as error:
            report.errors.append(str(error))
    if report.errors:  # after the good files are in
        raise InvalidInput(_("%(n)s catalog file(s) could not be loaded:") % {"n": len(report.errors)} + "\n" + "\n".join(report.errors))
    return report


def _sync_entry(entry: CatalogEntry, actor, report: SyncReport) -> None:
    topic = Topic.objects.filter(key=entry.header.get("topic", "")).first()
    meta = {
        "name": entry.header.get("name", entry.key),
        "category": entry.header.get("category", "transactional"),
        "channel": entry.header.get("channel", "email"),
    }
    template = Template.objects.filter(key=entry.key, locale=entry.locale).first()
    created = template is None
    if created:
        template = create_template(actor=actor, key=entry.key, locale=entry.locale, topic=topic, **meta)
        Template.objects.filter(pk=template.pk).update(from_catalog=True)
    header_changed = not created and (
        any(getattr(template, name) != value for name, value in meta.items()) or template.topic_id != (topic.pk if topic else None)
    )
    if header_changed:
        Template.objects.filter(pk=template.pk).update(topic=topic, **meta)
    latest = template.versions.order_by("-number").first()
    version = save_template_version(
        actor=actor,
        template=template,
        subject=entry.header.get("subject", ""),
        preheader=entry.header.get("preheader", ""),
        body_format=entry.body_format,
        body=entry.body,
        text_body=entry.text_body,
        sms_body=entry.sms_body,
        note=_("From the catalog file %(file)s") % {"file": f"{entry.key}/{entry.path.name}"},
    )
    new_version = latest is None or version.pk != latest.pk
    if new_version:
        activate_template_version(actor=actor, version=version)
    if created:
        report.created += 1
    elif new_version or header_changed:
        report.updated += 1
    else:
        report.unchanged += 1
