"""Secrets in messages (reset and verification links, gift-card codes…): readable only by
the person they are sent to, never by the staff who can read the outbox.

A message is *sensitive* when `enqueue_message(..., secrets={"url": url})` is given
secrets. The stored subject and body then hold only a marker per secret
(`__MAILROOM_SECRET_URL__`); the values are sealed (Fernet: AES-128-CBC + HMAC-SHA256,
with a key derived from SECRET_KEY) in the row's `sealed_secrets`. At send time the worker
unseals them onto the message object in memory (`attach_secrets`), and the function that
composes what goes on the wire fills the markers in (`reveal`). Once the message is sent,
or finally failed, suppressed or cancelled, the seal is dropped from the row. Everything
that shows a body to staff (console, sandbox inbox, API, view-in-browser) shows
`hidden_notice()` instead for a sensitive message, whoever asks.
"""

import base64
import json
import re
from html.parser import HTMLParser
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from messaging.errors import InvalidInput

SALT = "mailroom.outbox-secrets"
MARKER_PREFIX = "__MAILROOM_SECRET_"
_WORD = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
NAME = re.compile(rf"{_WORD}(?:\.{_WORD})*")  # no "__": a marker ends with it
_SECRETS_ATTR = "_mailroom_secrets"  # set on the in-memory message by the sender only


class SecretUnavailable(Exception):
    """The seal is gone (already sent or given up) or cannot be opened (SECRET_KEY changed)."""


def marker(name: str) -> str:
    """What stands in a stored body for the secret `name` (letters, digits and `_` only, so
    HTML escaping, MJML and `upper` leave it as it is)."""
    return f"{MARKER_PREFIX}{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}__"


def hidden_notice() -> str:
    return gettext("hidden: contains a secret link")


# --- sealing -----------------------------------------------------------------------------------
def _fernet(salt: str = SALT) -> MultiFernet:
    """One key per SECRET_KEY (and per fallback, so a key rotation does not lose the queue),
    and per purpose (`salt`): a sealed outbox secret never opens as a credential."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    cache = _fernet.__dict__.setdefault("cache", {})
    cached = cache.get(salt)
    if cached and cached[0] == keys:
        return cached[1]
    fernets = [Fernet(base64.urlsafe_b64encode(salted_hmac(salt, "fernet-key", secret=key, algorithm="sha256").digest())) for key in keys]
    cache[salt] = (keys, MultiFernet(fernets))
    return cache[salt][1]


CREDENTIALS_SALT = "mailroom.provider-credentials"


def seal_credentials(values: dict[str, str]) -> str:
    """A provider's credentials typed in the console ({"password": …}), encrypted and
    authenticated for the database ("" when there are none)."""
    values = {name: value for name, value in values.items() if value}
    return _fernet(CREDENTIALS_SALT).encrypt(json.dumps(values).encode()).decode() if values else ""


def unseal_credentials(sealed: str) -> dict[str, str]:
    """{name: value}; raises SecretUnavailable when SECRET_KEY changed since they were sealed."""
    if not sealed:
        return {}
    try:
        return json.loads(_fernet(CREDENTIALS_SALT).decrypt(sealed.encode()))
    except (InvalidToken, ValueError) as error:
        raise SecretUnavailable("the stored credentials cannot be unsealed (was SECRET_KEY changed?): type them again") from error


WEBHOOK_SALT = "mailroom.webhook-secret"


def seal_webhook_secret(secret: str) -> str:
    """A webhook endpoint's signing secret, encrypted and authenticated for the database."""
    return _fernet(WEBHOOK_SALT).encrypt(secret.encode()).decode()


def unseal_webhook_secret(sealed: str) -> str:
    """The signing secret; raises SecretUnavailable when SECRET_KEY changed since it was sealed."""
    try:
        return _fernet(WEBHOOK_SALT).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError) as error:
        raise SecretUnavailable("the webhook secret cannot be unsealed (was SECRET_KEY changed?): create the endpoint again") from error


def seal_text(value: str, *, salt: str) -> str:
    """One value sealed for the database under its own purpose (`salt`), e.g. a coupon code
    waiting in a pool: it opens only with the same salt."""
    return _fernet(salt).encrypt(value.encode()).decode()


def unseal_text(sealed: str, *, salt: str) -> str:
    """The value sealed with `seal_text`; raises SecretUnavailable when it is gone or SECRET_KEY changed."""
    if not sealed:
        raise SecretUnavailable("the sealed value was discarded")
    try:
        return _fernet(salt).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError) as error:
        raise SecretUnavailable("the sealed value cannot be unsealed (was SECRET_KEY changed?)") from error


WEBHOOK_BODY_SALT = "mailroom.webhook-body"


def webhook_body_hidden_notice() -> str:
    return gettext("hidden: contains a secret")


def seal_webhook_body(body: str) -> str:
    """A webhook delivery's JSON body that carries a secret (a coupon code…), sealed at rest:
    only the request on the wire holds it in clear."""
    return seal_text(body, salt=WEBHOOK_BODY_SALT)


def unseal_webhook_body(sealed: str) -> str:
    """The exact body sealed by `seal_webhook_body`; raises SecretUnavailable."""
    try:
        return unseal_text(sealed, salt=WEBHOOK_BODY_SALT)
    except SecretUnavailable as error:
        raise SecretUnavailable("the webhook body cannot be unsealed (was SECRET_KEY changed?)") from error


def seal(values: dict[str, str]) -> str:
    """The secrets, keyed by their marker, encrypted and authenticated."""
    return _fernet().encrypt(json.dumps({marker(name): value for name, value in values.items()}).encode()).decode()


def unseal(sealed: str) -> dict[str, str]:
    """{marker: value}; raises SecretUnavailable."""
    if not sealed:
        raise SecretUnavailable("the secret this message carried was discarded")
    try:
        return json.loads(_fernet().decrypt(sealed.encode()))
    except (InvalidToken, ValueError) as error:
        raise SecretUnavailable("the secret this message carried cannot be unsealed (was SECRET_KEY changed?)") from error


# --- at enqueue ----------------------------------------------------------------------------------
def check_secrets(secrets: dict[str, Any]) -> dict[str, str]:
    """Names and values a message may carry as secrets (a clear error for a bad one)."""
    checked = {}
    for name, value in secrets.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise InvalidInput(gettext("A secret needs a name like “url” or “gift_card.code”."), fields={"secrets": [str(name)]})
        if not isinstance(value, str) or len(value) < 4:
            raise InvalidInput(gettext("The secret “%(name)s” must be text of at least 4 characters.") % {"name": name})
        checked[name] = value
    return checked


def with_markers(context: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """The render context with each secret replaced by its marker (`gift_card.code` goes in
    context["gift_card"]["code"]); the renderer never sees a secret value."""
    context = dict(context)
    for name in secrets:
        *parents, leaf = name.split(".")
        level = context
        for parent in parents:
            child = level.get(parent)
            level[parent] = child = dict(child) if isinstance(child, dict) else {}
            level = child
        level[leaf] = marker(name)
    return context


class _Placements(HTMLParser):
    """Where each marker stands in an HTML body. A secret may be text, or the whole target
    of a link when it is itself a link; anywhere else (an image, a style, a link to another
    site, a form, a comment a client may parse) a mail client or a click carries it to whoever
    wrote the template, so the template's author, not the recipient, would hold it."""

    RAW = frozenset({"style", "script", "form"})  # read by the client, or posted where the form says

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.links = {marker(name) for name, value in secrets.items() if value.startswith(("https://", "http://"))}
        self.markers = {marker(name): name for name in secrets}
        self.raw_depth = 0
        self.misplaced: list[str] = []

    def _misplace(self, content: str | None) -> None:
        if content and MARKER_PREFIX in content:
            self.misplaced += [name for found, name in self.markers.items() if found in content]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for attribute, value in attrs:
            if not (tag in ("a", "area") and attribute == "href" and (value or "").strip() in self.links):
                self._misplace(value)
        if tag in self.RAW:
            self.raw_depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for attribute, value in attrs:
            if not (tag in ("a", "area") and attribute == "href" and (value or "").strip() in self.links):
                self._misplace(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.RAW and self.raw_depth:
            self.raw_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.raw_depth:
            self._misplace(data)
        else:
            _misplaced_in_text(data, self.markers, self.misplaced)

    def handle_comment(self, data: str) -> None:
        self._misplace(data)

    handle_decl = handle_pi = unknown_decl = handle_comment


URLISH = re.compile(r"[/?=&#%@.]")  # what a token has before a secret glued to an address
HOSTISH = re.compile(r"[\w-]*(?:\.[a-z0-9-]*[a-z][a-z0-9-]*|[/?#=@])", re.IGNORECASE)  # ...or after it


def _misplaced_in_text(text: str, markers: dict[str, str], misplaced: list[str]) -> None:
    """In text, a secret stands as its own word, not at the end of an address
    (`https://evil.example/?c=CODE` is one click from leaving)."""
    for found, name in markers.items():
        for match in re.finditer(re.escape(found), text):
            before = re.split(r"\s", text[: match.start()])[-1].lstrip("([{<\"'")
            after = re.split(r"\s", text[match.end() :])[0]
            if URLISH.search(before) or HOSTISH.match(after):
                misplaced.append(name)


def misplaced_secrets(secrets: dict[str, str], *, text: str = "", html: str = "") -> list[str]:
    """The names of the secrets a body puts where they would leave the recipient's hands."""
    misplaced: list[str] = []
    _misplaced_in_text(text, {marker(name): name for name in secrets}, misplaced)
    if html and MARKER_PREFIX in html:
        parser = _Placements(secrets)
        parser.feed(html)
        parser.close()
        misplaced += parser.misplaced
    return sorted(set(misplaced))


def check_stored(
    secrets: dict[str, str], *, subject: str, parts: list[str], context: dict[str, Any] | None = None, text: str = "", html: str = ""
) -> None:
    """Before a sensitive message is stored: no secret value anywhere in what is stored, no
    secret in the subject (it shows in every list), each secret used in the body, and used
    only as text or as a whole link (`text` and `html` are the bodies among `parts`)."""
    stored = [subject, *parts, json.dumps(context or {}, default=str)]
    if misplaced := misplaced_secrets(secrets, text=text, html=html):
        raise InvalidInput(
            gettext("A secret can only be shown as text or be the whole address of a link: “%(name)s” is used elsewhere.")
            % {"name": misplaced[0]},
            fields={"secrets": misplaced},
        )
    for name, value in secrets.items():
        if any(value in part for part in stored):
            raise InvalidInput(
                gettext("The secret “%(name)s” appears in clear in the message: use its marker.") % {"name": name},
                fields={"secrets": [name]},
            )
        if marker(name) in subject:
            raise InvalidInput(gettext("A secret cannot go in the subject."), fields={"subject": [name]})
        if not any(marker(name) in part for part in parts):
            raise InvalidInput(gettext("The secret “%(name)s” is not used in the message.") % {"name": name}, fields={"secrets": [name]})


# --- at send time --------------------------------------------------------------------------------
def attach_secrets(message) -> None:
    """Unseal the message's secrets onto the object in memory (never saved); raises SecretUnavailable."""
    message.__dict__[_SECRETS_ATTR] = unseal(message.sealed_secrets)


def reveal(message, content: str) -> str:
    """`content` as it goes on the wire: the markers filled with the secrets. Only the send
    path, which attached them, gets them; anything else gets the hidden notice."""
    if not content or MARKER_PREFIX not in content:
        return content
    values = message.__dict__.get(_SECRETS_ATTR) or {}
    return re.sub(rf"{MARKER_PREFIX}[A-Z0-9_]*?__", lambda found: values.get(found.group(0), f"[{hidden_notice()}]"), content)


def redact(content: str) -> str:
    """`content` with every secret marker replaced by the hidden notice."""
    if not content or MARKER_PREFIX not in content:
        return content
    return re.sub(rf"{MARKER_PREFIX}[A-Z0-9_]*?__", f"[{hidden_notice()}]", content)


# --- rows written before secrets were sealed ------------------------------------------------------
def hide_legacy_secrets(apps, query) -> int:
    """For data migrations: the finished outbox rows matching `query` (a Q over OutboxMessage)
    that an older Mailroom stored with their secret in clear (reset and verification links,
    gift-card codes) lose their bodies and are marked sensitive, with their sandbox copies.
    A queued one is left to go out as it is (its secret exists nowhere else)."""
    outbox = apps.get_model("messaging", "OutboxMessage")
    sandbox = apps.get_model("messaging", "SandboxMessage")
    try:  # the bodies' own table, from migration 0033 on
        bodies = apps.get_model("messaging", "OutboxBody")
    except LookupError:
        bodies = None
    rows = outbox.objects.filter(query, is_sensitive=False).exclude(status__in=["queued", "sending"])
    ids = list(rows.values_list("pk", flat=True))
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        if bodies is None:
            outbox.objects.filter(pk__in=batch).update(is_sensitive=True, body_text="", body_html="", sealed_secrets="")
        else:
            outbox.objects.filter(pk__in=batch).update(is_sensitive=True, sealed_secrets="")
            bodies.objects.filter(message_id__in=batch).delete()
        sandbox.objects.filter(message_id__in=batch).update(is_sensitive=True, body_text="", body_html="")
    return len(ids)
