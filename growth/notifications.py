"""Growth's emails: catalog templates sent through the outbox, always with a dedup key,
always after the action's transaction commits. A failure to queue is logged, never raised
into the action that already committed."""

import logging
from typing import Any

from django.db import transaction

from messaging.content.versions import pick_template
from messaging.delivery.outbox import enqueue_message
from messaging.errors import MailroomError
from messaging.models import Channel, Contact

logger = logging.getLogger(__name__)


def send_catalog_email(
    *, key: str, contact_id: int, context: dict[str, Any], dedup_key: str, secrets: dict[str, str] | None = None
) -> int | None:
    """Queue the catalog template `key` for one contact; returns the outbox id or None.
    `secrets` (e.g. {"gift_card.code": code}) go in the template's context but are sealed:
    the outbox never shows them to staff (messaging.secrets)."""
    contact = Contact.objects.active().filter(pk=contact_id, email__isnull=False).first()
    if contact is None:
        logger.info("growth email %s skipped: contact %s has no email", key, contact_id)
        return None
    template = pick_template(key=key, locale=contact.locale)
    if template is None:
        logger.warning("growth email %s skipped: no active catalog template (run sync_templates)", key)
        return None
    try:
        message = enqueue_message(
            channel=Channel.EMAIL, contact=contact, template=template, context=context, dedup_key=dedup_key, secrets=secrets
        )
    except MailroomError as error:
        logger.warning("growth email %s to contact %s not queued: %s", key, contact_id, error)
        return None
    return message.pk


def email_on_commit(*, key: str, contact_id: int, context: dict[str, Any], dedup_key: str, secrets: dict[str, str] | None = None) -> None:
    transaction.on_commit(
        lambda: send_catalog_email(key=key, contact_id=contact_id, context=context, dedup_key=dedup_key, secrets=secrets), robust=True
    )
