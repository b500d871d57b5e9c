"""Provider webhooks. Thin: verify the signature, parse, call an action. A bad signature
gets 403 and stores nothing."""

import base64
import hashlib
import hmac
import logging
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging import site
from messaging.delivery.inbound import inbound_key, receive_inbound, record_delivery_event
from messaging.models import DeliveryEvent, Provider
from messaging.storable import check_storable, loads_storable

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Mailroom-Signature"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"

# Twilio-style status callbacks → our event kinds.
TWILIO_STATUSES = {
    "delivered": DeliveryEvent.Kind.DELIVERED,
    "read": DeliveryEvent.Kind.OPENED,
    "undelivered": DeliveryEvent.Kind.BOUNCED,
    "failed": DeliveryEvent.Kind.FAILED,
}


def signature_for(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 keyed by the auth token over the full URL
    followed by each POST parameter, sorted by name, as name + value (a repeated name: its
    distinct values sorted), base64 — as Twilio's own helper libraries compute it."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _verified(request: HttpRequest, provider: Provider) -> bool:
    """The provider's own scheme: Mailroom's X-Mailroom-Signature (HMAC-SHA256 of the body), or
    with config "signature": "twilio", Twilio's X-Twilio-Signature. Either way keyed by the
    secret the config names (MAILROOM_SECRET_<NAME>; for Twilio, the auth token)."""
    name = provider.config.get("webhook_secret")
    secret = settings.MAILROOM_SECRETS.get(name or "", "")
    if not secret:
        logger.warning("provider %s has no webhook secret: refusing its webhooks", provider)
        return False
    if provider.config.get("signature") == "twilio":
        return _twilio_verified(request, secret)
    # Bytes on both sides: compare_digest refuses a str with non-ASCII characters (a 500).
    given = request.headers.get(SIGNATURE_HEADER, "").encode("utf-8", "replace")
    return hmac.compare_digest(signature_for(secret, request.body).encode(), given)


def _public_urls(request: HttpRequest) -> set[str]:
    """The address Twilio was given and signed: MAILROOM_BASE_URL and the path as requested
    (behind a proxy, Django's own idea of the host and scheme is not it). Twilio signs some
    callbacks with the scheme's default port written out and some without: both count."""
    url = site.current().link(request.get_full_path())
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    urls = {url}
    if default_port and parts.port in (None, default_port):
        for netloc in (host, f"{host}:{default_port}"):
            urls.add(urlunsplit(parts._replace(netloc=netloc)))
    return urls


def _twilio_verified(request: HttpRequest, auth_token: str) -> bool:
    # The signature covers the URL and form fields only: a JSON body would go unsigned.
    if request.content_type != "application/x-www-form-urlencoded":
        return False
    given = request.headers.get(TWILIO_SIGNATURE_HEADER, "").encode("utf-8", "replace")
    params = list(request.POST.lists())
    pairs = [(name, value) for name, values in params for value in values]
    # every candidate is compared (no early exit): the time taken does not say which was close
    matches = [hmac.compare_digest(twilio_signature(auth_token, url, pairs).encode(), given) for url in sorted(_public_urls(request))]
    return any(matches)


class BadPayload(ValueError):
    """A signed delivery we cannot read or store: 400, and nothing is stored."""


def _payload(request: HttpRequest) -> dict:
    """The body as a dict; BadPayload when it is not one we could store (bad JSON, NUL,
    unpaired surrogates, absurd nesting, not an object)."""
    try:
        if request.content_type == "application/json":
            data = loads_storable(request.body or b"{}")
        else:
            data = request.POST.dict()
            check_storable(data)
    except ValueError:
        raise BadPayload("body must be a JSON object of storable text") from None
    if not isinstance(data, dict):
        raise BadPayload("body must be a JSON object")
    return data


def _text(data: dict, name: str, *, required: bool = False, max_length: int = 200) -> str:
    """A field that must be text (JSON bodies can hold anything)."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadPayload(f"'{name}' is required")
        return ""
    if not isinstance(value, str) or len(value) > max_length:
        raise BadPayload(f"'{name}' must be text of at most {max_length} characters")
    return value


def _bad(error: BadPayload) -> JsonResponse:
    return JsonResponse({"detail": str(error)}, status=400)


@csrf_exempt
@require_POST
def delivery_events(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = get_object_or_404(Provider, pk=provider_id)
    if not _verified(request, provider):
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    try:
        data = _payload(request)
        if "MessageStatus" in data:  # Twilio-style form callback
            status, provider_message_id = (
                _text(data, "MessageStatus", required=True, max_length=40),
                _text(data, "MessageSid", max_length=150),
            )
            kind = TWILIO_STATUSES.get(status)
            external_id = f"{provider_message_id}:{status}"
        else:
            kind, external_id = _text(data, "type", max_length=40), _text(data, "id")
            provider_message_id = _text(data, "message_id")
            if kind not in DeliveryEvent.Kind.values or not external_id:
                return JsonResponse({"detail": "need 'id' and a known 'type'", "types": DeliveryEvent.Kind.values}, status=400)
    except BadPayload as error:
        return _bad(error)
    if kind is None:
        return JsonResponse({"status": "ignored"})
    event = record_delivery_event(
        kind=kind, provider=provider, provider_message_id=provider_message_id, external_id=external_id, payload=data
    )
    return JsonResponse({"status": "recorded" if event else "duplicate"})


@csrf_exempt
@require_POST
def inbound_message(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = get_object_or_404(Provider, pk=provider_id)
    if not _verified(request, provider):
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    try:
        data = _payload(request)
        sender, recipient = _text(data, "From", required=True, max_length=254), _text(data, "To", required=True, max_length=254)
        body, provider_id = _text(data, "Body", max_length=100_000), _text(data, "MessageSid")
    except BadPayload as error:
        return _bad(error)
    channel = "whatsapp" if sender.startswith("whatsapp:") else provider.channel
    inbound = receive_inbound(
        channel=channel,
        from_address=sender.removeprefix("whatsapp:"),
        to_address=recipient.removeprefix("whatsapp:"),
        body=body,
        # Without the provider's id, the signed body itself is the key: a replay is a duplicate.
        external_id=provider_id or inbound_key(provider=provider, raw_body=request.body),
    )
    return JsonResponse({"status": inbound.status if inbound else "duplicate"})
