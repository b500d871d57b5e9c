"""Small pieces the API resources share."""

from datetime import UTC

import django_filters
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request

from messaging.api.problems import CONTENT_TYPE as PROBLEM_CONTENT_TYPE
from messaging.api.problems import ProblemSerializer
from messaging.consent import ConsentContext
from messaging.delivery.throttle import client_address
from messaging.models import ConsentRecord


def consent_context(request: Request, *, wording_version: str = "") -> ConsentContext:
    """How consent changed through the API (kept in the append-only consent log)."""
    return ConsentContext(
        source=ConsentRecord.Source.API,
        ip_address=client_address(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        wording_version=wording_version,
    )


def problems(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """Problem responses for the schema: `@extend_schema(responses={200: X, **problems(400, 409)})`."""
    return {(status, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description=PROBLEM_CONTENT_TYPE) for status in statuses}


class ReadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List + detail; writes are explicit methods that parse input and call an action."""

    lookup_value_regex = r"\d+"

    def parse(self, request: Request, serializer_class: type[serializers.Serializer]) -> dict:
        """The request body through an input serializer (types only; actions check the rules)."""
        serializer = serializer_class(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 filter compared in UTC. Python accepts any offset under 24 h; PostgreSQL
    refuses past ±15:59 (e.g. +20:26) and the query would fail with a 500."""

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before year 1 in UTC
                raise serializers.ValidationError({"detail": [_("This date is out of range.")]}) from None
        return super().filter(qs, value)
