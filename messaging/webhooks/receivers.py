"""Messaging's own events sent to webhook endpoints (connected in messaging.wiring)."""

from messaging.webhooks.emit import emit


def on_contact_erased(sender, contact, values, message_ids, **kwargs) -> None:
    """`contact_erased`: only the contact's id leaves (the personal data is being scrubbed)."""
    emit("contact.erased", {"contact_id": contact.pk})


def on_signup_confirmed(sender, contact, form, **kwargs) -> None:
    """`signup_confirmed` (sent after the confirmation commits): which form won which contact."""
    emit("form.confirmed", {"contact_id": contact.pk, "form_id": form.pk, "form": form.slug})
