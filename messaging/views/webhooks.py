"""Provider webhooks. Thin: verify the signature, parse, call an action. A bad signature
gets 403 and stores nothing."""

import hashlib
import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from messaging.inbound import receive_inbound, record_delivery_event
from messaging.models import DeliveryEvent, Provider
from messaging.storable import check_storable, loads_storable

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Mailroom-Signature"

# Twilio-style status callbacks → our event kinds.
TWILIO_STATUSES = {
    "delivered": DeliveryEvent.Kind.DELIVERED,
    "read": DeliveryEvent.Kind.OPENED,
    "undelivered": DeliveryEvent.Kind.BOUNCED,
    "failed": DeliveryEvent.Kind.FAILED,
}


def signature_for(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _verified(request: HttpRequest, provider: Provider) -> bool:
    name = provider.config.get("webhook_secret")
    secret = settings.MAILROOM_SECRETS.get(name or "", "")
    if not secret:
        logger.warning("provider %s has no webhook secret: refusing its webhooks", provider)
        return False
    return hmac.compare_digest(signature_for(secret, request.body), request.headers.get(SIGNATURE_HEADER, ""))


def _payload(request: HttpRequest) -> dict | None:
    """The body as a dict, or None when it is not one we could store (bad JSON, NUL,
    unpaired surrogates, absurd nesting)."""
    try:
        if request.content_type == "application/json":
            data = loads_storable(request.body or b"{}")
        else:
            data = request.POST.dict()
            check_storable(data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@csrf_exempt
@require_POST
def delivery_events(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = get_object_or_404(Provider, pk=provider_id)
    if not _verified(request, provider):
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    data = _payload(request)
    if data is None:
        return JsonResponse({"detail": "body must be a JSON object"}, status=400)
    if "MessageStatus" in data:  # Twilio-style form callback
        kind = TWILIO_STATUSES.get(data["MessageStatus"])
        if kind is None:
            return JsonResponse({"status": "ignored"})
        external_id = f"{data.get('MessageSid', '')}:{data['MessageStatus']}"
        provider_message_id = data.get("MessageSid", "")
    else:
        kind, external_id, provider_message_id = data.get("type"), data.get("id"), data.get("message_id", "")
        if kind not in DeliveryEvent.Kind.values or not external_id:
            return JsonResponse({"detail": "need 'id' and a known 'type'", "types": DeliveryEvent.Kind.values}, status=400)
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
    data = _payload(request) or {}
    sender, recipient = data.get("From", ""), data.get("To", "")
    if not sender or not recipient:
        return JsonResponse({"detail": "From and To are required"}, status=400)
    channel = "whatsapp" if sender.startswith("whatsapp:") else provider.channel
    inbound = receive_inbound(
        channel=channel,
        from_address=sender.removeprefix("whatsapp:"),
        to_address=recipient.removeprefix("whatsapp:"),
        body=data.get("Body", ""),
        external_id=data.get("MessageSid") or None,
    )
    return JsonResponse({"status": inbound.status if inbound else "duplicate"})
