"""Tracking and the per-message public links.

Every http(s) link in an HTML body is stored once as a TrackedLink and rewritten to our
click endpoint; the message keeps the ids of its links (metadata["links"]) and a click
only ever redirects to one of them. An open pixel is added to tracked HTML. The message
part of each link is a signed, purpose-salted, expiring token (messaging.tokens) made at
send time, so the token's own timestamp says when the message went out: a hit seconds
later is a prefetch, found without reading the message.

Recording a hit is one INSERT (no audit entry: nobody changed anything); rollups are
computed elsewhere.
"""

import hashlib
import json
import re
from contextlib import nullcontext
from functools import lru_cache
from html import unescape

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from messaging import site
from messaging.models import DeliveryEvent, OutboxMessage, TrackedLink
from messaging.secrets import MARKER_PREFIX as SECRET_MARKER_PREFIX
from messaging.tokens import Token, TokenError, TokenService, conceal_id, never, public_link_seconds
from messaging.webhooks.emit import emit_many, is_heard, message_event

CLICK_SALT = "mailroom.click"
OPEN_SALT = "mailroom.open"
MESSAGE_MARKER = "__MAILROOM_MESSAGE__"
OPEN_MARKER = "__MAILROOM_OPEN__"
HREF = re.compile(r"""href=(["'])(https?://[^"']+)\1""", re.IGNORECASE)
CLICK_PATH = re.compile(r"/t/(\d+)/" + MESSAGE_MARKER + "/")
PIXEL = f'<img src="{OPEN_MARKER}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">'
# The smallest transparent GIF: 43 bytes.
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x21\xf9\x04\x01\x00\x00\x00\x00"
    b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
)


# MJML and most editors write `href` in lower case: then a pattern that starts with that
# literal finds the same links about three times faster (the regex engine jumps to each
# "href=" instead of trying every character).
HREF_LOWER = re.compile(r"""href=(["'])((?i:https?)://[^"']+)\1""")


def track_html(html: str) -> tuple[str, list[int]]:
    """The stored body of a tracked email and the TrackedLink ids it links to (the only
    targets its clicks may reach): every http(s) link rewritten to a click URL carrying a
    per-message marker filled in at send time, and the open pixel added. One pass over the
    body: it runs once per campaign message, in the worker that sends it."""
    html, link_ids = _rewrite(html)
    return add_open_pixel(html), link_ids


def rewrite_links(html: str) -> str:
    """Replace http(s) links by click URLs carrying a per-message marker filled in at send time."""
    return _rewrite(html)[0]


def _rewrite(html: str) -> tuple[str, list[int]]:
    pattern = HREF_LOWER if html.count("href=") == html.lower().count("href=") else HREF
    parts: list[str] = []
    ids: set[int] = set()
    end, base = 0, None
    for match in pattern.finditer(html):
        quote, url = match.group(1), match.group(2)
        if SECRET_MARKER_PREFIX in url:  # a link carrying a secret (messaging.secrets) is never a TrackedLink
            continue
        if base is None:
            base = site.current().base_url.rstrip("/")
        # The attribute's text is HTML (`?a=1&amp;b=2`): the link is what a browser would follow.
        link_id = _link_id(unescape(url) if "&" in url else url)
        ids.add(link_id)
        parts += (html[end : match.start()], f"href={quote}{base}/t/{link_id}/{MESSAGE_MARKER}/{quote}")
        end = match.end()
    if not parts:
        return html, []
    parts.append(html[end:])
    return "".join(parts), sorted(ids)


def tracked_link_ids(html: str) -> list[int]:
    """The TrackedLink ids a rewritten body links to: the only targets its clicks may reach."""
    return sorted({int(found) for found in CLICK_PATH.findall(html)})


def add_open_pixel(html: str) -> str:
    """A 1x1 image at the end of the body; its URL is filled in at send time."""
    if not html or OPEN_MARKER in html:
        return html
    if "</body>" in html:
        return html.replace("</body>", PIXEL + "</body>", 1)
    return html + PIXEL


_known_links: dict[str, int] = {}


def _link_id(url: str) -> int:
    """TrackedLink ids are immutable, so a process keeps them once looked up."""
    if url not in _known_links:
        digest = hashlib.sha256(url.encode()).hexdigest()
        link, _ = TrackedLink.objects.get_or_create(url_hash=digest, defaults={"url": url})
        _known_links[url] = link.pk
    return _known_links[url]


@lru_cache(maxsize=4096)
def _stored_url(link_id: int) -> str:
    return TrackedLink.objects.values_list("url", flat=True).get(pk=link_id)


def tracked_url(link_id: int) -> str | None:
    """The stored URL of a link (immutable, so kept per process once found), or None."""
    try:
        return _stored_url(link_id)
    except TrackedLink.DoesNotExist:  # not cached: an unknown id costs a query each time
        return None


def forget_links() -> None:
    """Drop the per-process link caches (tests: each starts with an empty database)."""
    _known_links.clear()
    _stored_url.cache_clear()


# --- tokens ----------------------------------------------------------------------------------
CLICKS = TokenService(CLICK_SALT, max_age=public_link_seconds)
OPENS = TokenService(OPEN_SALT, max_age=public_link_seconds)


def message_token(message_pk: int) -> str:
    return CLICKS.make(conceal_id(message_pk))


def open_token(message_pk: int) -> str:
    return OPENS.make(conceal_id(message_pk))


# Public links that need the message id; the pages live under these paths.
PUBLIC_LINKS = {
    "__MAILROOM_UNSUBSCRIBE__": ("u", "mailroom.unsubscribe"),
    "__MAILROOM_PREFERENCES__": ("p", "mailroom.preferences"),
    "__MAILROOM_VIEW__": ("v", "mailroom.view"),
}


# An unsubscribe link keeps working however old the message is (a person must always be
# able to leave); the preference and view-in-browser links expire.
NEVER_EXPIRE = {"__MAILROOM_UNSUBSCRIBE__"}
# Not compressed: their payload, {"m": <concealed id>}, is 20 bytes that zlib never makes
# shorter, so trying cost a zlib.compress per message for the same token. Compressed tokens
# in emails already sent still read back (the "." prefix says so, whatever the service).
PUBLIC_TOKENS = {
    marker: TokenService(salt, max_age=never if marker in NEVER_EXPIRE else public_link_seconds)
    for marker, (_prefix, salt) in PUBLIC_LINKS.items()
}


def public_link(message_pk: int, marker: str) -> str:
    token = PUBLIC_TOKENS[marker].make({"m": conceal_id(message_pk)})
    return site.current().link(f"/{PUBLIC_LINKS[marker][0]}/{token}/")


def open_url(message_pk: int) -> str:
    return site.current().link(f"/o/{open_token(message_pk)}.gif")


def read_public_token(token: str, marker: str) -> int:
    """The message id in a public link's token; raises TokenInvalid or TokenExpired."""
    message_pk, _read = PUBLIC_TOKENS[marker].read_id(token, "m")
    return message_pk


def message_from_public_token(token: str, marker: str) -> int | None:
    """The message id in a public link's token, or None when tampered with or expired."""
    try:
        return read_public_token(token, marker)
    except TokenError:  # any TokenError
        return None


def fill_message_marker(content: str, message_pk: int) -> str:
    """Fill the per-message parts of links at send time (one cheap check when there are none)."""
    if "__MAILROOM_" not in content:
        return content
    if MESSAGE_MARKER in content:
        content = content.replace(MESSAGE_MARKER, message_token(message_pk))
    if OPEN_MARKER in content:
        content = content.replace(OPEN_MARKER, open_url(message_pk))
    for marker in PUBLIC_LINKS:
        if marker in content:
            content = content.replace(marker, public_link(message_pk, marker))
    return content


def message_from_token(token: str) -> int | None:
    """The message id of a click token, or None when tampered with or expired."""
    try:
        return CLICKS.read_id(token, "m")[0]
    except TokenError:
        return None


# --- recording hits --------------------------------------------------------------------------
# Machines that fetch images or follow links on a person's behalf. Their hits are kept
# (they prove delivery) but flagged, so rates can leave them out.
PROXY_AGENTS = (
    ("googleimageproxy", "image-proxy"),
    ("ggpht.com", "image-proxy"),
    ("yahoomailproxy", "image-proxy"),
    ("bingpreview", "scanner"),
)
# Substrings of lower-cased user agents (plain `in` checks: a regex alternation with
# IGNORECASE cost ~0.3 ms per hit, more than the INSERT).
SCANNER_WORDS = (
    "bot/", "bot;", "bot)", "bot ", "bot-", "crawler", "spider", "scanner", "headless", "python-requests", "python-urllib",
    "curl/", "wget/", "go-http-client", "java/", "okhttp", "barracuda", "proofpoint", "mimecast", "symantec", "trendmicro",
    "forcepoint", "safelinks", "url defense", "facebookexternalhit", "slackbot", "linkexpanding", "preview", "libwww",
    "httpclient", "axios",
)  # fmt: skip


def automated_reason(*, user_agent: str, age_seconds: float) -> str:
    """Why a hit looks automated ("" when it looks like a person):
    - apple-mpp: Apple Mail Privacy Protection fetches every image through a proxy whose
      user agent is exactly "Mozilla/5.0";
    - image-proxy: Gmail's and Yahoo's image proxies;
    - scanner: security gateways, link expanders, scripts and crawlers;
    - prefetch: within MAILROOM_PREFETCH_SECONDS of sending (the token's own timestamp),
      faster than any person opens or clicks."""
    agent = user_agent.strip()
    if not agent:
        return "scanner"
    if agent == "Mozilla/5.0":
        return "apple-mpp"
    lowered = agent.lower()
    for needle, reason in PROXY_AGENTS:
        if needle in lowered:
            return reason
    if any(word in lowered for word in SCANNER_WORDS):
        return "scanner"
    if age_seconds < settings.MAILROOM_PREFETCH_SECONDS:
        return "prefetch"
    return ""


_INSERT_HIT = None


def _insert_hit_sql() -> str:
    global _INSERT_HIT
    if _INSERT_HIT is None:
        meta, quote = DeliveryEvent._meta, connection.ops.quote_name
        names = ["message", "kind", "payload", "is_automated", "occurred_at"]
        columns = ", ".join(quote(meta.get_field(name).column) for name in names)
        _INSERT_HIT = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES (%s, %s, %s, %s, %s)"
    return _INSERT_HIT


def record_hit(*, kind: str, message_pk: int, token: Token, user_agent: str, link_id: int | None = None) -> bool:
    """One INSERT of a DeliveryEvent, in autocommit; False when the message no longer
    exists (its id came from a token we signed, so only a deleted message fails the
    foreign key). Plain SQL: the ORM's create() cost more than the INSERT itself."""
    reason = automated_reason(user_agent=user_agent, age_seconds=token.age_seconds)
    payload: dict = {"link": link_id} if link_id is not None else {}
    if reason:
        payload["automated"] = reason
    params = (message_pk, kind, json.dumps(payload), bool(reason), connection.ops.adapt_datetimefield_value(timezone.now()))
    event = message_event(kind, message_id=message_pk, link_id=link_id, automated=reason or None)
    # The hit and its webhook rows commit together; a transaction only when someone listens.
    heard = event is not None and is_heard(event[0])
    try:
        with transaction.atomic() if heard else nullcontext(), connection.cursor() as cursor:
            cursor.execute(_insert_hit_sql(), params)
            if heard:
                emit_many([event])
    except IntegrityError:
        return False
    return True


def message_links(message_pk: int, link_id: int) -> bool:
    """Whether the message exists and links to this TrackedLink (one indexed read of its
    metadata). Messages queued before their link ids were kept are checked against their body."""
    meta, quote = OutboxMessage._meta, connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('metadata')} FROM {quote(meta.db_table)} WHERE {quote('id')} = %s", [message_pk])
        row = cursor.fetchone()
    if row is None:
        return False
    metadata = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    links = metadata.get("links") if isinstance(metadata, dict) else None
    if isinstance(links, list):
        return link_id in links
    return OutboxMessage.objects.filter(pk=message_pk, body__html__contains=f"/t/{link_id}/").exists()
