"""The sandbox: stores every message in the database and sends nothing. The default of
`make run`, so a new user sees every email and SMS in the console's sandbox inbox."""

import uuid

from django.db import transaction
from django.utils import timezone

from messaging.models import DeliveryEvent, SandboxMessage
from messaging.providers.base import Result, Session, final_text, permanent, sent
from messaging.providers.email.mime import compose
from messaging.webhooks.emit import emit_many, message_event

# The external id of the delivered event the sandbox records for each message it accepts.
DELIVERED_ID_PREFIX = "sandbox:"


class SandboxSession(Session):
    def __enter__(self) -> "SandboxSession":
        self.caught: list[SandboxMessage] = []
        return self

    def send(self, message) -> Result:
        if self.provider.config.get("fail_addresses") and message.to_address in self.provider.config["fail_addresses"]:
            return permanent("550 sandbox: address configured to fail", hard_bounce=True)
        # The same composition SMTP and the ESPs send, stored redacted: the sandbox inbox is
        # read by staff, a secret is for the recipient only.
        if message.channel == "email":
            wire = compose(message, self.provider, with_secrets=False)
            headers, text, html, source = wire.headers, wire.text, wire.html, wire.raw.decode("utf-8", "replace")
        else:
            headers, text, html, source = {}, final_text(message, with_secrets=False), "", ""
        self.caught.append(
            SandboxMessage(
                message_id=message.pk,
                provider=self.provider,
                channel=message.channel,
                to_address=message.to_address,
                from_address=headers.get("From", message.from_address),
                subject=message.subject,
                body_text=text,
                body_html=html,
                headers=headers,
                source=source,
                is_sensitive=message.is_sensitive,
            )
        )
        return sent("stored in the sandbox", provider_message_id=f"sandbox-{uuid.uuid4().hex[:16]}")

    def flush(self) -> None:
        """Store what was caught, and what a real provider's "delivered" webhook would record:
        the sandbox is the recipient's server, so a message it holds is delivered (once).
        One transaction: the delivered events and their webhook rows land together."""
        if not self.caught:
            return
        now = timezone.now()
        delivered = [
            DeliveryEvent(
                message_id=caught.message_id,
                kind=DeliveryEvent.Kind.DELIVERED,
                external_id=f"{DELIVERED_ID_PREFIX}{caught.message_id}",
                payload={"provider": self.provider.name},
                occurred_at=now,
            )
            for caught in self.caught
            if caught.message_id is not None
        ]
        with transaction.atomic():
            SandboxMessage.objects.bulk_create(self.caught)
            DeliveryEvent.objects.bulk_create(delivered, ignore_conflicts=True)
            emit_many([message_event(event.kind, message_id=event.message_id) for event in delivered])
        self.caught = []

    def close(self) -> None:
        self.flush()
