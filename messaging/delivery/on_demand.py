"""Sends on demand: one message sent now to show a person what the wire carries.

A provider test goes through exactly that provider; a template test renders a version with
sample data (or a real contact's) and sends it through the usual providers. Both are marked
`test_send` in their metadata, which keeps them out of marketing counts and frequency caps.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.audit import record_audit
from messaging.consent import normalise_address
from messaging.content.merge_tags import sample_context
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import deliver, deliver_now, lease_length, record_outcomes
from messaging.models import OutboxMessage, Provider, TemplateVersion


def send_test_message(*, actor, provider: Provider, to: str) -> OutboxMessage:
    """Send one message through exactly this provider, now, and return it with its outcome.
    It is leased to nobody else, so no worker picks it up with another provider."""
    now = timezone.now()
    with transaction.atomic():
        message = OutboxMessage.objects.create(
            channel=provider.channel,
            to_address=normalise_address(to, provider.channel),
            subject=_("Mailroom test message"),
            body_text=_("This test message was sent through the provider “%(name)s”.") % {"name": provider.name},
            priority=OutboxMessage.Priority.TRANSACTIONAL,
            status=OutboxMessage.Status.SENDING,
            attempts=1,
            max_attempts=1,
            next_attempt_at=now,
            lease_until=now + lease_length(),
            lease_owner="test-send",
            metadata={"test_send": True},
        )
        record_audit(actor=actor, verb="test-sent", target=provider, changes={"to": {"before": None, "after": message.to_address}})
    record_outcomes(deliver([message], [provider]))
    message.refresh_from_db()
    return message


def send_template_test(*, actor: AbstractBaseUser | None, version: TemplateVersion, to: str, contact=None):
    """Render a version with sample data (or a real contact's) and send it now to `to`."""
    template = version.template
    message = enqueue_message(
        channel=template.channel,
        to=to,
        template_version=version,
        context=sample_context(contact),
        priority=OutboxMessage.Priority.TRANSACTIONAL,
        metadata={"test_send": True},
    )
    record_audit(actor=actor, verb="test-sent", target=template, changes={"to": {"before": None, "after": message.to_address}})
    return deliver_now(message)
