"""Every API error is an RFC 9457 problem (`application/problem+json`):

    {"type": "urn:mailroom:problem:invalid", "title": "Invalid request", "status": 400,
     "detail": "…", "instance": "/api/v1/contacts/", "code": "invalid",
     "fields": {"email": ["“x” is not a valid email address."]}}

This module is the one place errors become HTTP: DRF's exceptions, Django's Http404 /
PermissionDenied / ValidationError and Mailroom's domain errors (messaging.errors, whose
`describe_error` gives the code, message and fields). A higher app whose error needs
another status than its base class registers it once: `register_error_status(MyError, 409)`.
"""

import logging
import re
from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import set_rollback

from messaging.errors import DuplicateContact, InvalidInput, MailroomError, NotAllowed, describe_error

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:mailroom:problem:"

# Domain errors → HTTP status. The most specific class registered wins (MRO order).
_STATUS_BY_ERROR: dict[type[MailroomError], int] = {
    MailroomError: 400,
    InvalidInput: 400,
    DuplicateContact: 409,  # the request is fine; the state of the data conflicts
    NotAllowed: 409,  # e.g. cancelling a message already sent
}

TITLES = {
    400: gettext_lazy("Invalid request"),
    401: gettext_lazy("Authentication required"),
    403: gettext_lazy("Permission denied"),
    404: gettext_lazy("Not found"),
    405: gettext_lazy("Method not allowed"),
    406: gettext_lazy("Not acceptable"),
    409: gettext_lazy("Conflict"),
    415: gettext_lazy("Unsupported media type"),
    429: gettext_lazy("Too many requests"),
    500: gettext_lazy("Server error"),
}

STORAGE_FULL_OR_READ_ONLY = re.compile(r"database or disk is full|readonly database|read-only|No space left on device", re.IGNORECASE)


def register_error_status(error_class: type[MailroomError], status: int) -> None:
    _STATUS_BY_ERROR[error_class] = status


def status_for(error: MailroomError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS_BY_ERROR:
            return _STATUS_BY_ERROR[cls]
    return 400


def problem(*, status: int, code: str, detail: str, instance: str = "", fields: dict[str, list[str]] | None = None) -> dict:
    body = {
        "type": TYPE_PREFIX + code,
        "title": str(TITLES.get(status) or HTTPStatus(status).phrase),
        "status": status,
        "detail": str(detail),
        "instance": instance,
        "code": code,
    }
    if fields:
        body["fields"] = fields
    return body


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"dotted.field": [messages]} (lists get their index)."""
    if isinstance(detail, dict):
        result: dict[str, list[str]] = {}
        for name, value in detail.items():
            if name in ("__all__", "non_field_errors"):  # about the object itself: its own path
                result.update(flatten_errors(value, prefix))
            else:
                result.update(flatten_errors(value, f"{prefix}{name}."))
        return result
    if isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        result = {}
        for index, item in enumerate(detail):
            if item:
                result.update(flatten_errors(item, f"{prefix}{index}."))
        return result
    messages = [str(item) for item in (detail if isinstance(detail, list) else [detail])]
    return {prefix.rstrip(".") or "non_field_errors": messages}


def _domain_fields(fields: dict[str, list[str]]) -> dict[str, list[str]]:
    return {("non_field_errors" if name == "__all__" else name): [str(m) for m in msgs] for name, msgs in fields.items()}


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER. Returns None (→ a plain 500) only for unexpected errors."""
    request = context.get("request")
    instance = request.path if request is not None else ""
    headers: dict[str, str] = {}
    if isinstance(exc, DjangoValidationError):
        exc = InvalidInput.from_validation_error(exc)
    if isinstance(exc, OperationalError) and STORAGE_FULL_OR_READ_ONLY.search(str(exc)):
        # The disk is full or the database read-only: say so (503, retry later), not a bare 500.
        logger.error("api storage unavailable on %s: %s", instance, exc)
        set_rollback()
        body = problem(
            status=503,
            code="storage_unavailable",
            detail=_("The database cannot store anything right now (disk full or read-only). Nothing was saved; try again later."),
            instance=instance,
        )
        return Response(body, status=503, headers={"Retry-After": "60"}, content_type=CONTENT_TYPE)
    if isinstance(exc, MailroomError):
        described = describe_error(exc)
        status = status_for(exc)
        body = problem(status=status, code=described["code"], detail=described["detail"], instance=instance)
        if described["fields"]:
            body["fields"] = _domain_fields(described["fields"])
        logger.info("api problem %s %s on %s: %s", status, exc.code, instance, exc)
    else:
        if isinstance(exc, Http404):
            exc = exceptions.NotFound()
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        if not isinstance(exc, exceptions.APIException):
            return None
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, exceptions.ValidationError):
            body = problem(
                status=exc.status_code,
                code="invalid",
                detail=_("Some fields are invalid."),
                instance=instance,
                fields=flatten_errors(exc.detail),
            )
        else:
            detail = exc.detail
            code = getattr(detail, "code", None) or exc.default_code
            body = problem(status=exc.status_code, code=str(code), detail=str(detail), instance=instance)
    set_rollback()
    return Response(body, status=body["status"], headers=headers, content_type=CONTENT_TYPE)


def not_found_problem(request: HttpRequest) -> JsonResponse:
    """A 404 for a URL under /api/ that matches no endpoint (config.urls.handler404)."""
    body = problem(status=404, code="not_found", detail=_("No API endpoint at this address."), instance=request.path)
    return JsonResponse(body, status=404, content_type=CONTENT_TYPE, json_dumps_params={"ensure_ascii": False})


class ProblemSerializer(serializers.Serializer):
    """The problem body, for the OpenAPI schema."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField()
    code = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
