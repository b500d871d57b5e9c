"""Who may do what: one policy function per capability.

The console (`has_<action>_permission`, custom pages), the API (`messaging.api.permissions`)
and anything else ask these functions; none writes its own check. Each maps to the Django
permissions the role groups hold (see accounts/roles.py), so the roles stay the one source
of truth. Higher apps write their own policies the same way (`requires("app.codename")`).
"""

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from messaging.models import OutboxMessage

Policy = Callable[[AbstractBaseUser | AnonymousUser], bool]


def requires(*perms: str) -> Policy:
    """A policy granted to active users holding every one of `perms`."""

    def policy(user: AbstractBaseUser | AnonymousUser) -> bool:
        return bool(user and user.is_active and user.has_perms(perms))

    policy.__name__ = "requires_" + "_and_".join(p.split(".")[-1] for p in perms)
    policy.perms = perms  # type: ignore[attr-defined]
    return policy


def can_use_api(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Any active, authenticated user or key: the API root and the schema say what exists."""
    return bool(user and user.is_active and user.is_authenticated)


# Audience
can_view_contacts = requires("messaging.view_contact")
can_create_contacts = requires("messaging.add_contact")
can_change_contacts = requires("messaging.change_contact")
can_delete_contacts = requires("messaging.delete_contact")
# Import a CSV of contacts, follow its job and read its error report (which quotes the file).
can_import_contacts = requires("messaging.add_contact", "messaging.view_importjob")
can_view_subscriptions = requires("messaging.view_subscription")
can_change_subscriptions = requires("messaging.change_subscription")  # preferences and unsubscribes
can_view_suppressions = requires("messaging.view_suppression")
can_add_suppressions = requires("messaging.add_suppression")
can_lift_suppressions = requires("messaging.delete_suppression")
can_view_topics = requires("messaging.view_topic")
can_view_consent_records = requires("messaging.view_consentrecord")  # the consent log, preference changes among them
can_view_signup_forms = requires("messaging.view_signupform")
can_create_signup_forms = requires("messaging.add_signupform")
can_edit_signup_forms = requires("messaging.change_signupform")  # topics, wording, pages, opt-in mode
can_delete_signup_forms = requires("messaging.delete_signupform")

# Content
can_view_templates = requires("messaging.view_template")
can_create_templates = requires("messaging.add_template")
can_edit_templates = requires("messaging.change_template")  # save versions, activate, deactivate
can_view_template_versions = requires("messaging.view_templateversion")
can_archive_templates = can_edit_templates  # archive a sent template, unarchive it
# Delete one never sent (messaging.content.retirement); a sent one can only be archived.
can_delete_templates = requires("messaging.delete_template")
# A package (messaging.content.packages) holds every language and its content.
can_export_templates = requires("messaging.view_template", "messaging.view_templateversion")
# Importing creates templates and new versions of existing ones.
can_import_templates = requires("messaging.add_template", "messaging.change_template")

# Delivery
can_view_messages = requires("messaging.view_outboxmessage")
can_enqueue_messages = requires("messaging.add_outboxmessage")
can_manage_messages = requires("messaging.change_outboxmessage")  # cancel, requeue


def can_read_attachments(user: AbstractBaseUser | AnonymousUser, message: OutboxMessage) -> bool:
    """A message's files are part of its content: whoever may read the message may download
    them, and nobody those of a message carrying a secret (its body is hidden from all)."""
    return can_view_messages(user) and not message.is_sensitive


# Operations (Ops, Admin): delivery health as /metrics and the console notices show it
# (resting providers, the backlog, the cluster's heartbeat).
can_watch_operations = requires("messaging.view_provider", "messaging.view_deliveryattempt")
can_run_providers = requires("messaging.change_provider")  # pause, priority, rate limits, test sends
# Where messages go (a provider's kind, channel and configuration: host, URL, backend, account,
# credential names) decides who receives every reset link and gift-card code: Admin only.
can_route_messages = requires("messaging.add_provider", "messaging.change_provider")
# Which IMAP server an inbox logs in to, as whom, with which named secret: whoever sets the
# host receives the password Mailroom sends it. Admin only, like a provider's configuration.
can_configure_mailboxes = can_route_messages
can_check_mailboxes = requires("messaging.change_inbox")

# Settings
# Who sends, the postal address, links' base and email delivery (server, credentials): Admin only.
can_manage_settings = requires("messaging.view_sitesettings", "messaging.change_sitesettings")
can_view_api_keys = requires("messaging.view_apikey")
can_create_api_keys = requires("messaging.add_apikey")
can_revoke_api_keys = requires("messaging.change_apikey")
# Outbound webhooks (Admin, Ops): endpoints carry a signing secret and decide where data goes.
can_view_webhooks = requires("messaging.view_webhookendpoint")
can_create_webhooks = requires("messaging.add_webhookendpoint")
can_change_webhooks = requires("messaging.change_webhookendpoint")
can_delete_webhooks = requires("messaging.delete_webhookendpoint")
can_view_webhook_deliveries = requires("messaging.view_webhookdelivery")
can_replay_webhooks = requires("messaging.change_webhookdelivery")

# Background jobs (django-q2). Choosing what the cluster runs is running code on the
# server, and task arguments and results may hold secrets: Admin only (accounts/roles.py
# gives no other role add/change on schedules).
can_manage_jobs = requires("django_q.add_schedule", "django_q.change_schedule")
can_read_job_payloads = can_manage_jobs
