from messaging.models.audit import AuditEntry
from messaging.models.consent import ConsentRecord, Subscription, Suppression, Topic
from messaging.models.contacts import Channel, Contact

__all__ = [
    "AuditEntry",
    "Channel",
    "ConsentRecord",
    "Contact",
    "Subscription",
    "Suppression",
    "Topic",
]
