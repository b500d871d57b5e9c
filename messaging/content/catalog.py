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

A template package (a zip, messaging.content.packages) holds the same layout: one folder
per key with these files and a `manifest.json`. `read_zip` reads one, refusing hostile
archives (too big, too many files, paths leaving the folder, text that is not UTF-8);
`sync_catalog` loads the zips it finds in the catalog directory too.
"""

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.validators import slug_re
from django.db import transaction
from django.utils.translation import gettext as _

from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.errors import InvalidInput
from messaging.models import Template, TemplateVersion, Topic

HEADER_KEYS = {"name", "category", "topic", "subject", "preheader", "channel"}
BODY_SUFFIXES = {".mjml": "mjml", ".html": "html"}
PART_SUFFIXES = (".txt", ".sms")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
# A zip bomb is refused before anything is inflated past these.
MAX_PACKAGE_FILES = 400
MAX_PACKAGE_BYTES = 20 * 1024 * 1024  # uncompressed, every file together
MAX_FILE_BYTES = 2 * 1024 * 1024


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
    path: Path | PurePosixPath


def parse_source(path: Path | PurePosixPath, raw: str, *, text_body: str = "", sms_body: str = "") -> CatalogEntry:
    """One <key>/<locale>.mjml|.html file's text (header and body) with its sibling parts."""
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
    return CatalogEntry(
        key=path.parent.name,
        locale=path.stem,
        header=header,
        body_format=BODY_SUFFIXES.get(path.suffix, "html"),
        body=body.strip() + "\n" if body.strip() else "",
        text_body=text_body,
        sms_body=sms_body.strip(),
        path=path,
    )


def parse_entry(path: Path) -> CatalogEntry:
    sibling = path.with_suffix
    return parse_source(
        path,
        path.read_text(encoding="utf-8"),
        text_body=sibling(".txt").read_text(encoding="utf-8") if sibling(".txt").exists() else "",
        sms_body=sibling(".sms").read_text(encoding="utf-8") if sibling(".sms").exists() else "",
    )


def catalog_files(root: Path | None = None) -> list[Path]:
    root = root or catalog_root()
    return [path for path in sorted(root.glob("*/*")) if path.suffix in BODY_SUFFIXES]


def catalog_entries(root: Path | None = None) -> list[CatalogEntry]:
    return [parse_entry(path) for path in catalog_files(root)]


@dataclass
class Package:
    """One template key as a package: its manifest and one entry per language."""

    key: str
    manifest: dict
    entries: list[CatalogEntry]


def read_zip(data: bytes, *, name: str = "package.zip") -> list[Package]:
    """The packages (one per top folder) in a zip, checked before anything is loaded."""
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise InvalidInput(_("%(name)s is not a zip file.") % {"name": name}) from error
    if len(infos) > MAX_PACKAGE_FILES:
        raise InvalidInput(_("%(name)s holds %(n)s files; at most %(max)s.") % {"name": name, "n": len(infos), "max": MAX_PACKAGE_FILES})
    if sum(info.file_size for info in infos) > MAX_PACKAGE_BYTES:
        raise InvalidInput(_("%(name)s is larger than %(max)s MB once unpacked.") % {"name": name, "max": MAX_PACKAGE_BYTES // 2**20})
    files: dict[PurePosixPath, str] = {}
    unpacked = 0
    for info in infos:
        path = _safe_path(info.filename)
        if path in files:
            raise InvalidInput(_("%(file)s appears twice in the zip.") % {"file": path})
        files[path] = _read_text(archive, info, path)
        unpacked += len(files[path])
        if unpacked > MAX_PACKAGE_BYTES:  # the directory's sizes lied
            raise InvalidInput(_("%(name)s is larger than %(max)s MB once unpacked.") % {"name": name, "max": MAX_PACKAGE_BYTES // 2**20})
    folders = sorted({path.parent for path in files})
    return [_package(folder, {p: text for p, text in files.items() if p.parent == folder}) for folder in folders]


def _safe_path(filename: str) -> PurePosixPath:
    """<key>/<file>, nothing else: no absolute path, no .., no deeper folder."""
    path = PurePosixPath(filename)
    if "\\" in filename or path.is_absolute() or ".." in path.parts or ":" in filename or len(path.parts) != 2:
        raise InvalidInput(
            _("%(file)s: a package holds only <key>/<file> paths (no absolute path, no .., no sub-folder).") % {"file": filename}
        )
    return path


def _read_text(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: PurePosixPath) -> str:
    try:
        with archive.open(info) as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # the sizes in the zip's directory may lie
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error, EOFError) as error:  # encrypted, unknown method, bad CRC
        raise InvalidInput(_("%(file)s cannot be read from the zip (%(error)s).") % {"file": path, "error": error}) from error
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInput(_("%(file)s is larger than %(max)s MB.") % {"file": path, "max": MAX_FILE_BYTES // 2**20})
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(_("%(file)s is not UTF-8 text (byte %(at)s).") % {"file": path, "at": error.start}) from error


def _package(folder: PurePosixPath, files: dict[PurePosixPath, str]) -> Package:
    manifest_path = folder / MANIFEST
    if manifest_path not in files:
        raise InvalidInput(_("%(folder)s/: the package has no %(manifest)s.") % {"folder": folder, "manifest": MANIFEST})
    manifest = parse_manifest(files.pop(manifest_path), path=manifest_path)
    if not slug_re.fullmatch(folder.name):
        raise InvalidInput(_("%(folder)s/: a template key is letters, digits, - and _.") % {"folder": folder})
    if manifest.get("key", folder.name) != folder.name:
        raise InvalidInput(_("%(file)s: the key must be the folder's name, %(key)s.") % {"file": manifest_path, "key": folder.name})
    entries = []
    for path, text in sorted(files.items()):
        if path.suffix in BODY_SUFFIXES:
            text_body, sms_body = (files.get(path.with_suffix(suffix), "") for suffix in PART_SUFFIXES)
            entries.append(parse_source(path, text, text_body=text_body, sms_body=sms_body))
        elif path.suffix not in PART_SUFFIXES or not any(path.with_suffix(s) in files for s in BODY_SUFFIXES):
            raise InvalidInput(_("%(file)s: unexpected file (a language has <locale>.mjml or .html, .txt, .sms).") % {"file": path})
    if not entries:
        raise InvalidInput(_("%(folder)s/: the package holds no language.") % {"folder": folder})
    return Package(key=folder.name, manifest=manifest, entries=entries)


def parse_manifest(text: str, *, path: PurePosixPath) -> dict:
    try:
        manifest = json.loads(text)
    except ValueError as error:
        raise InvalidInput(_("%(file)s is not valid JSON: %(error)s") % {"file": path, "error": error}) from error
    if not isinstance(manifest, dict):
        raise InvalidInput(_("%(file)s must hold a JSON object.") % {"file": path})
    if manifest.get("format") != MANIFEST_FORMAT:
        raise InvalidInput(
            _("%(file)s: unknown package format %(format)s (this Mailroom reads format %(known)s).")
            % {"file": path, "format": json.dumps(manifest.get("format")), "known": MANIFEST_FORMAT}
        )
    languages = manifest.get("languages") or {}
    if not isinstance(languages, dict) or not all(isinstance(value, dict) for value in languages.values()):
        raise InvalidInput(_("%(file)s: “languages” maps each language to an object.") % {"file": path})
    for values in (manifest, *languages.values()):
        for name in SETTING_NAMES:
            value = values.get(name)
            wanted = list if name == "whatsapp_variables" else str
            if value is not None and not isinstance(value, wanted):
                raise InvalidInput(_("%(file)s: “%(name)s” has the wrong type.") % {"file": path, "name": name})
    return manifest


SETTING_NAMES = ("name", "category", "topic", "channel", "whatsapp_template_sid", "whatsapp_variables")


def settings_of(package: Package | None, entry: CatalogEntry) -> dict:
    """A language's template settings: its header over the manifest's language entry over
    the manifest's own values."""
    manifest = package.manifest if package else {}
    language = (manifest.get("languages") or {}).get(entry.locale) or {}
    pick = {name: manifest.get(name) for name in SETTING_NAMES}
    pick |= {name: value for name, value in language.items() if name in pick}
    pick |= {name: value for name, value in entry.header.items() if name in pick}
    return {
        "name": pick["name"] or entry.key,
        "category": pick["category"] or "transactional",
        "channel": pick["channel"] or "email",
        "topic": pick["topic"] or "",
        "whatsapp_template_sid": pick["whatsapp_template_sid"] or "",
        "whatsapp_variables": pick["whatsapp_variables"] or [],
    }


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def sync_catalog(*, actor=None, root: Path | None = None, zips: list[Path] | None = None) -> SyncReport:
    """Load every catalog file, and every package zip in the catalog directory (or `zips`
    alone when given); each file and each zip is its own transaction, so one bad file does
    not stop the others. Raises one InvalidInput naming every bad file at the end."""
    report = SyncReport()
    root = root or catalog_root()
    for path in catalog_files(root) if zips is None else []:
        try:
            with transaction.atomic():
                _sync_entry(parse_entry(path), None, actor, report)
        except InvalidInput as error:
            report.errors.append(str(error))
    for path in sorted(root.glob("*.zip")) if zips is None else zips:
        try:
            with transaction.atomic():
                for package in read_zip(path.read_bytes(), name=path.name):
                    for entry in package.entries:
                        _sync_entry(entry, package, actor, report)
        except InvalidInput as error:
            report.errors.append(f"{path.name}: {error}")
    if report.errors:  # after the good files are in
        raise InvalidInput(_("%(n)s catalog file(s) could not be loaded:") % {"n": len(report.errors)} + "\n" + "\n".join(report.errors))
    return report


def save_entry_version(*, actor, template: Template, entry: CatalogEntry, note: str) -> TemplateVersion:
    """Save one catalog entry's parts as a version of `template` (the existing version when
    nothing changed): the one way the catalog and template packages write content."""
    return save_template_version(
        actor=actor,
        template=template,
        subject=entry.header.get("subject", ""),
        preheader=entry.header.get("preheader", ""),
        body_format=entry.body_format,
        body=entry.body,
        text_body=entry.text_body,
        sms_body=entry.sms_body,
        note=note,
    )


def _sync_entry(entry: CatalogEntry, package: Package | None, actor, report: SyncReport) -> None:
    values = settings_of(package, entry)
    topic = Topic.objects.filter(key=values["topic"]).first()
    meta = {name: values[name] for name in ("name", "category", "channel")}
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
    version = save_entry_version(
        actor=actor, template=template, entry=entry, note=_("From the catalog file %(file)s") % {"file": f"{entry.key}/{entry.path.name}"}
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
