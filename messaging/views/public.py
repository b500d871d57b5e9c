"""Public endpoints hit by recipients' mail clients: tracked clicks. One insert, one redirect."""

from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils import timezone

from messaging.models import DeliveryEvent, OutboxMessage, TrackedLink
from messaging.tracking import message_from_token


def click(request: HttpRequest, link_id: int, token: str) -> HttpResponseRedirect:
    link = get_object_or_404(TrackedLink, pk=link_id)  # only stored URLs can be targets
    message_pk = message_from_token(token)
    if message_pk is None:
        raise Http404
    if OutboxMessage.objects.filter(pk=message_pk).exists():
        DeliveryEvent.objects.create(
            message_id=message_pk, kind=DeliveryEvent.Kind.CLICKED, payload={"link": link.pk}, occurred_at=timezone.now()
        )
    return HttpResponseRedirect(link.url)
