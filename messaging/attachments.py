"""Attachments and inline images of outbox messages: checked, stored through Django's
storage API (MAILROOM_ATTACHMENT_STORAGE), read back at send time, deleted with their row.

The checks, in order, each refusing the whole message with InvalidInput naming the file:
- size: MAILROOM_ATTACHMENT_MAX_FILE_BYTES per file, MAILROOM_ATTACHMENT_MAX_MESSAGE_BYTES in all;
- declared type: one of MAILROOM_ATTACHMENT_TYPES (a "family/" entry allows the family);
- content: never an executable (Windows PE, ELF, Mach-O, a "#!" script), never HTML or
  a script hidden in another type, and the common types' first bytes must agree with the
  declared type (a PNG is a PNG). This is a guard against disguised files, not a virus scan.
"""

import base64
import binascii
import logging
import mimetypes
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.errors import InvalidInput
from messaging.models import Attachment, OutboxMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """A file to attach, as given by a caller (API, drop-in email backend, code)."""

    filename: str
    content: bytes
    content_type: str = ""
    content_id: str = ""  # an inline part: the HTML shows it with <img src="cid:…">


EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"#!")
HTML_SNIFF = re.compile(rb"<\s*(script|html|!doctype\s+html|iframe|object|embed|svg)\b", re.IGNORECASE)
MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
}
SAFE_FILENAME = re.compile(r"[^\w .()+-]", re.UNICODE)
MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
ORPHAN_GRACE = timedelta(hours=1)  # longer than any transaction that writes a message
ORPHAN_SCAN_DAYS = 3  # a rolled-back file is found by the next daily run; older folders hold none
CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{1,200}")


def _refuse(message: str, field: str = "attachments") -> InvalidInput:
    return InvalidInput(message, fields={field: [message]})


def clean_filename(name: str) -> str:
    name = SAFE_FILENAME.sub("_", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return name[:200] or "attachment"


def _allowed_type(content_type: str) -> bool:
    return any(
        content_type == allowed or (allowed.endswith("/") and content_type.startswith(allowed))
        for allowed in settings.MAILROOM_ATTACHMENT_TYPES
    )


def check_content(filename: str, content_type: str, content: bytes) -> None:
    """The declared type is allowed and the first bytes do not contradict it."""
    if not MIME_TYPE.fullmatch(content_type) or not _allowed_type(content_type):
        raise _refuse(_("“%(file)s”: the type %(type)s is not allowed as an attachment.") % {"file": filename, "type": content_type})
    head = content[:1024]
    if head.startswith(EXECUTABLE_MAGIC):
        raise _refuse(_("“%(file)s” is a program; programs cannot be attached.") % {"file": filename})
    if content_type != "text/html" and HTML_SNIFF.search(head):
        raise _refuse(_("“%(file)s” holds HTML or a script but is declared as %(type)s.") % {"file": filename, "type": content_type})
    expected = MAGIC.get(content_type)
    if expected and not head.startswith(expected):
        raise _refuse(_("“%(file)s” is declared as %(type)s but its content is not.") % {"file": filename, "type": content_type})
    if content_type == "image/webp" and not (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        raise _refuse(_("“%(file)s” is declared as %(type)s but its content is not.") % {"file": filename, "type": content_type})


def check_attachments(attachments: Iterable[NewAttachment]) -> list[NewAttachment]:
    """Every check, before anything is written: the cleaned list, or InvalidInput."""
    cleaned, total = [], 0
    per_file, per_message = settings.MAILROOM_ATTACHMENT_MAX_FILE_BYTES, settings.MAILROOM_ATTACHMENT_MAX_MESSAGE_BYTES
    for item in attachments:
        filename = clean_filename(item.filename)
        content_type = (item.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream").lower().split(";")[0].strip()
        if len(item.content) > per_file:
            raise _refuse(
                _("“%(file)s” is %(size)s; the limit per file is %(limit)s.")
                % {"file": filename, "size": _megabytes(len(item.content)), "limit": _megabytes(per_file)}
            )
        total += len(item.content)
        if total > per_message:
            raise _refuse(
                _("The attachments come to more than %(limit)s (at “%(file)s”); that is the limit per message.")
                % {"file": filename, "limit": _megabytes(per_message)}
            )
        content_id = (item.content_id or "").strip().strip("<>")
        if content_id and not CONTENT_ID.fullmatch(content_id):
            raise _refuse(_("“%(file)s”: the content id may hold no spaces or brackets.") % {"file": filename})
        check_content(filename, content_type, item.content)
        cleaned.append(NewAttachment(filename, item.content, content_type, content_id))
    return cleaned


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{max(size / 1024, 1):.0f} KB"


def from_base64(items: Iterable[dict]) -> list[NewAttachment]:
    """The API's JSON form: {"filename", "content_type", "content" (base64), "content_id"?, "inline"?}."""
    attachments = []
    for index, item in enumerate(items):
        filename = str(item.get("filename") or "")
        try:
            content = base64.b64decode(item.get("content") or "", validate=True)
        except (binascii.Error, ValueError, TypeError) as error:
            raise _refuse(_("Attachment %(n)s (“%(file)s”): the content is not base64.") % {"n": index + 1, "file": filename}) from error
        content_id = str(item.get("content_id") or "")
        if item.get("inline") and not content_id:  # the HTML could not refer to it
            raise _refuse(_("“%(file)s”: an inline attachment needs the content_id its HTML refers to.") % {"file": filename})
        attachments.append(NewAttachment(filename, content, str(item.get("content_type") or ""), content_id))
    return attachments


def store_attachments(message: OutboxMessage, attachments: list[NewAttachment]) -> list[Attachment]:
    """Write the checked files and their rows (inside the caller's transaction). Should
    writing fail part way, the files already written are deleted again. Should the caller's
    own transaction roll back later (Django has no hook for that), its files stay behind
    unreferenced until the daily `delete_orphaned_files` finds them."""
    rows: list[Attachment] = []
    try:
        for item in attachments:
            row = Attachment(
                message=message, filename=item.filename, content_type=item.content_type, size=len(item.content), content_id=item.content_id
            )
            row.file.save(f"{uuid.uuid4().hex}-{item.filename}", ContentFile(item.content), save=False)
            rows.append(row)
        Attachment.objects.bulk_create(rows)
    except Exception:
        remove_files(rows)
        raise
    return rows


def remove_files(rows: Iterable[Attachment]) -> None:
    """Delete the files of rows now (their transaction failed, or the rows are gone)."""
    _delete_now([(row.file.storage, row.file.name) for row in rows if row.file.name])


def delete_files(rows: Iterable[Attachment]) -> None:
    """After commit: the files of rows that are gone."""
    names = [(row.file.storage, row.file.name) for row in rows if row.file.name]
    if names:
        transaction.on_commit(lambda: _delete_now(names))


def _delete_now(names) -> None:
    for storage, name in names:
        try:
            storage.delete(name)
        except OSError:
            logger.warning("attachment file %s could not be deleted", name)


def delete_orphaned_files(*, now: datetime | None = None, days: int = ORPHAN_SCAN_DAYS) -> int:
    """Files of the last `days` days' folders that no attachment row names: written for a
    message whose transaction rolled back. Only files older than ORPHAN_GRACE are touched,
    so a message still being written keeps its files."""
    now = now or timezone.now()
    storage = Attachment._meta.get_field("file").storage
    deleted = 0
    for day in range(days):
        folder = (now - timedelta(days=day)).strftime("%Y/%m/%d")
        try:
            _dirs, names = storage.listdir(folder)
        except (FileNotFoundError, NotImplementedError):
            continue
        paths = [f"{folder}/{name}" for name in names]
        for start in range(0, len(paths), 500):
            batch = paths[start : start + 500]
            kept = set(Attachment.objects.filter(file__in=batch).values_list("file", flat=True))
            for path in batch:
                if path not in kept and storage.get_modified_time(path) < now - ORPHAN_GRACE:
                    _delete_now([(storage, path)])
                    deleted += 1
    return deleted


def load_attachments(messages: list[OutboxMessage]) -> None:
    """Fetch the attachments of the messages that have some, in one query."""
    carrying = [message for message in messages if message.has_attachments]
    if carrying:
        prefetch_related_objects(carrying, "attachments")


def attachments_of(message: OutboxMessage) -> list[Attachment]:
    return list(message.attachments.all()) if message.has_attachments else []


def read_content(attachment: Attachment) -> bytes:
    with attachment.file.storage.open(attachment.file.name, "rb") as handle:
        return handle.read()
