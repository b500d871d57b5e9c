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

from dataclasses import dataclass
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


def catalog_entries(root: Path | None = None) -> list[CatalogEntry]:
    root = root or catalog_root()
    return [parse_entry(path) for path in sorted(root.glob("*/*")) if path.suffix in (".mjml", ".html")]


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def sync_catalog(*, actor=None, root: Path | None = None) -> SyncReport:
    """Load every catalog file; each file is its own transaction, so one bad file names
    itself and the others still load."""
    report = SyncReport()
    for entry in catalog_entries(root):
        with transaction.atomic():
            template = Template.objects.filter(key=entry.key, locale=entry.locale).first()
            topic = Topic.objects.filter(key=entry.header.get("topic", "")).first()
            if template is None:
                template = create_template(
                    actor=actor,
                    key=entry.key,
                    locale=entry.locale,
                    name=entry.header.get("name", entry.key),
                    category=entry.header.get("category", "transactional"),
                    channel=entry.header.get("channel", "email"),
                    topic=topic,
                )
                Template.objects.filter(pk=template.pk).update(from_catalog=True)
                report.created += 1
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
            if latest is not None and version.pk == latest.pk:
                report.unchanged += 1
                continue
            if latest is not None:
                report.updated += 1
            activate_template_version(actor=actor, version=version)
    return report
