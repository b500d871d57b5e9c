"""Error reporting to Sentry, on only when SENTRY_DSN is set (config/settings.py calls
`init_sentry`). Nothing personal leaves:

- sentry-sdk 3 replaced `send_default_pii` with `data_collection`; its equivalent of
  `send_default_pii=False` is set, and stricter: no user identity or IP address, no
  cookies, no request bodies, no SQL parameters;
- `scrub_event` (before_send, and before_send_span for traces) replaces every email
  address, bearer/API-key/JWT token, secret-looking query parameter and long opaque token
  in the whole event (message, exception values, request URL, query string and headers,
  breadcrumbs, local variables), and drops the values of keys such as Authorization,
  Cookie, password, token, email.

Performance tracing is off unless SENTRY_TRACES_SAMPLE_RATE is set (above 0).

Failed cluster tasks are reported by messaging.error_reports (django-q2's post_execute
signal); django-q2's own "Failed …" log line is ignored so a failure is one event.
"""

import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import ignore_logger

FILTERED = "[Filtered]"
# Keys whose value is dropped whatever it holds (request headers, form fields, variables).
SENSITIVE_KEYS = re.compile(
    r"(?i)(authorization|cookie|password|passwd|secret|token|api[_-]?key|signature|csrf|session|dsn|credential|sealed|email|to_address)"
)
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
REPLACEMENTS = [
    (EMAIL, "[email]"),
    (re.compile(r"(?i)\b(bearer|api-key|token)(\s+|=)[^\s,;&\"']+"), r"\1\2[token]"),
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+"), "[jwt]"),
    (re.compile(r"(?i)((?:^|[?&;])(?:token|key|code|signature|sig|secret|password|t)=)[^&\s#\"']+"), r"\1[redacted]"),
    # Signed links (Django signing: value:timestamp:signature), gift-card codes, API-key secrets:
    # 24+ letters/digits/_/- holding a digit and a letter (identifiers like SOME_LONG_NAME stay).
    (re.compile(r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{24,}"), "[token]"),
]
# Keys of Sentry's own identifiers and code locations: left as they are at any depth.
SAFE_KEYS = frozenset(
    {
        "event_id", "timestamp", "start_timestamp", "trace_id", "span_id", "parent_span_id", "release", "environment",
        "platform", "level", "logger", "sdk", "modules", "server_name", "type", "module", "filename", "abs_path",
        "function", "lineno", "colno", "in_app", "mechanism", "fingerprint", "op", "origin", "status",
    }
)  # fmt: skip


def scrub_text(text: str) -> str:
    for pattern, replacement in REPLACEMENTS:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, *, key: str = "") -> Any:
    """A copy of `value` with sensitive keys filtered and every string scrubbed."""
    if key in SAFE_KEYS:
        return value
    if key and SENSITIVE_KEYS.search(key) and value not in (None, "", [], {}):
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {name: scrub(item, key=str(name)) for name, item in value.items()}
    if isinstance(value, list | tuple):
        # Headers come as [name, value] pairs in some events.
        if len(value) == 2 and isinstance(value[0], str) and SENSITIVE_KEYS.search(value[0]):
            return [value[0], FILTERED]
        return [scrub(item) for item in value]
    return value


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """Sentry's before_send (and before_send_span): the whole event or span, scrubbed."""
    return scrub(event)


DATA_COLLECTION = {
    "user_info": False,
    "cookies": {"mode": "off"},
    "http_bodies": [],
    "database_query_data": False,
}


def init_sentry(*, dsn: str, environment: str, release: str | None, traces_sample_rate: float | None, transport: Any = None) -> None:
    """Start the SDK (web processes and every cluster process inherit it). `transport` is
    for tests: a sentry_sdk Transport that keeps envelopes instead of sending them."""
    options: dict[str, Any] = {
        "dsn": dsn,
        "integrations": [DjangoIntegration()],
        # sentry-sdk 3's form of send_default_pii=False (which it no longer accepts).
        "data_collection": DATA_COLLECTION,
        "before_send": scrub_event,
        "before_send_span": scrub_event,
        "environment": environment,
        "release": release,
        "traces_sample_rate": traces_sample_rate or None,
    }
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(**options)
    ignore_logger("django-q")  # its "Failed …" line: messaging.error_reports sends the event
