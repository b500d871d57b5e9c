"""Payment webhooks. Thin: verify the signature, parse, call the action. A bad signature
gets 403 and stores nothing; a replayed delivery gets 200 and changes nothing."""

import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from marketing.automations.webhooks import SIGNATURE_HEADER, WebhookSignatureError, handle_payment_webhook, verify_signature
from messaging.errors import MailroomError, describe_error
from messaging.storable import loads_storable

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        verify_signature(
            payload=request.body,
            header=request.headers.get(SIGNATURE_HEADER, ""),
            secret=settings.MAILROOM_SECRETS.get("STRIPE_WEBHOOK", ""),
        )
    except WebhookSignatureError as error:
        logger.warning("stripe webhook refused: %s", error)
        return JsonResponse(describe_error(error), status=403)
    try:
        payload = loads_storable(request.body)
        if not isinstance(payload, dict):
            raise ValueError
    except ValueError:
        return JsonResponse({"code": "invalid", "detail": "The body is not a JSON object.", "fields": {}}, status=400)
    try:
        delivery, created = handle_payment_webhook(payload=payload)
    except MailroomError as error:
        return JsonResponse(describe_error(error), status=400)
    return JsonResponse({"received": True, "id": delivery.event_id, "replay": not created})
