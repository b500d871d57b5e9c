"""Tracked links: every link in an HTML body is stored once as a TrackedLink and rewritten
to our click endpoint. A click may only ever redirect to a stored TrackedLink URL."""

import hashlib
import re

from django.conf import settings
from django.core import signing

from messaging.models import TrackedLink

CLICK_SALT = "mailroom.click"
MESSAGE_MARKER = "__MAILROOM_MESSAGE__"
HREF = re.compile(r"""href=(["'])(https?://[^"']+)\1""", re.IGNORECASE)


def rewrite_links(html: str) -> str:
    """Replace http(s) links by click URLs carrying a per-message marker filled in at send time."""
    urls = {match.group(2) for match in HREF.finditer(html)}
    if not urls:
        return html
    ids = {url: _link_id(url) for url in urls}
    base = settings.MAILROOM_BASE_URL.rstrip("/")
    return HREF.sub(lambda m: f"href={m.group(1)}{base}/t/{ids[m.group(2)]}/{MESSAGE_MARKER}/{m.group(1)}", html)


_known_links: dict[str, int] = {}


def _link_id(url: str) -> int:
    """TrackedLink ids are immutable, so a process keeps them once looked up."""
    if url not in _known_links:
        digest = hashlib.sha256(url.encode()).hexdigest()
        link, _ = TrackedLink.objects.get_or_create(url_hash=digest, defaults={"url": url})
        _known_links[url] = link.pk
    return _known_links[url]


def message_token(message_pk: int) -> str:
    return signing.dumps(message_pk, salt=CLICK_SALT)


# Public links that need the message id; the pages live under these paths.
PUBLIC_LINKS = {
    "__MAILROOM_UNSUBSCRIBE__": ("u", "mailroom.unsubscribe"),
    "__MAILROOM_PREFERENCES__": ("p", "mailroom.preferences"),
    "__MAILROOM_VIEW__": ("v", "mailroom.view"),
}


def public_link(message_pk: int, marker: str) -> str:
    prefix, salt = PUBLIC_LINKS[marker]
    token = signing.dumps({"m": message_pk}, salt=salt, compress=True)
    return f"{settings.MAILROOM_BASE_URL.rstrip('/')}/{prefix}/{token}/"


def message_from_public_token(token: str, marker: str) -> int | None:
    """The message id in a public link's token, or None when tampered with or expired."""
    _prefix, salt = PUBLIC_LINKS[marker]
    try:
        data = signing.loads(token, salt=salt, max_age=settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS * 86400)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    return data.get("m") if isinstance(data, dict) and isinstance(data.get("m"), int) else None


def fill_message_marker(content: str, message_pk: int) -> str:
    """Fill the per-message parts of links at send time (one cheap check when there are none)."""
    if "__MAILROOM_" not in content:
        return content
    content = content.replace(MESSAGE_MARKER, message_token(message_pk))
    for marker in PUBLIC_LINKS:
        if marker in content:
            content = content.replace(marker, public_link(message_pk, marker))
    return content


def message_from_token(token: str) -> int | None:
    try:
        return int(signing.loads(token, salt=CLICK_SALT))
    except (signing.BadSignature, ValueError, TypeError):
        return None
