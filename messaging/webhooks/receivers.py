"""Messaging's own events sent to webhook endpoints (connected in messaging.wiring)."""

from messaging.webhooks.emit import emit


def on_contact_erased(sender, contact, values, message_ids, **kwargs) -> None:
    """`contact_erased`: only the contact's id leaves (the personal data is being scrubbed)."""
    emit("contact.erased", {"contact_id": contact.pk})
