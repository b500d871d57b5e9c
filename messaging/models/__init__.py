from messaging.models.api_keys import ApiKey
from messaging.models.attachments import Attachment
from messaging.models.audit import AuditEntry
from messaging.models.consent import ConsentRecord, LegalBasis, Subscription, Suppression, Topic
from messaging.models.contacts import Channel, Contact, Frequency
from messaging.models.content import Template, TemplateVersion
from messaging.models.delivery import (
    DeliveryAttempt,
    DeliveryEvent,
    Inbox,
    InboxMessage,
    OutboxBody,
    OutboxMessage,
    Provider,
    SandboxMessage,
    TrackedLink,
)
from messaging.models.imports import ImportJob
from messaging.models.signup import PendingSignup, SignupForm
from messaging.models.site import SiteSettings
from messaging.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Attachment",
    "AuditEntry",
    "Channel",
    "ConsentRecord",
    "Contact",
    "DeliveryAttempt",
    "DeliveryEvent",
    "Frequency",
    "ImportJob",
    "Inbox",
    "InboxMessage",
    "LegalBasis",
    "OutboxBody",
    "OutboxMessage",
    "PendingSignup",
    "Provider",
    "SandboxMessage",
    "SignupForm",
    "SiteSettings",
    "Subscription",
    "Suppression",
    "Template",
    "TemplateVersion",
    "Topic",
    "TrackedLink",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
