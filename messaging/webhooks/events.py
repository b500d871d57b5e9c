"""The event types an endpoint may subscribe to. Messaging registers its own here; marketing
and growth register theirs from their wiring (messaging never imports them)."""

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

EVENT_TYPES: dict[str, str | Promise] = {
    "message.sent": _("Message sent"),
    "message.delivered": _("Message delivered"),
    "message.bounced": _("Message bounced"),
    "message.complained": _("Message complaint"),
    "message.opened": _("Message opened"),
    "message.clicked": _("Message clicked"),
    "message.failed": _("Message failed"),
    "contact.subscribed": _("Contact subscribed"),
    "contact.unsubscribed": _("Contact unsubscribed"),
    "contact.consent_changed": _("Contact consent changed"),
    "contact.erased": _("Contact erased"),
    "form.confirmed": _("Sign-up form confirmed"),
}
# Types whose body carries a secret (a coupon code the host must honour): their deliveries
# are sealed at rest and no console page or API answer shows the body.
SECRET_EVENT_TYPES: set[str] = set()


def register_event_type(name: str, label: str | Promise, *, secret: bool = False) -> None:
    """Let endpoints subscribe to `name` (e.g. "campaign.state_changed"). With `secret`, the
    event's data holds something only the receiver may read: every delivery of it is stored
    sealed and shown to nobody (messaging.secrets.seal_webhook_body)."""
    EVENT_TYPES.setdefault(name, label)
    if secret:
        SECRET_EVENT_TYPES.add(name)


def is_secret_event_type(name: str) -> bool:
    return name in SECRET_EVENT_TYPES


def event_type_choices() -> list[tuple[str, str | Promise]]:
    return sorted(EVENT_TYPES.items())
