"""Telling people: approvers when a campaign waits for them, authors when theirs moves.

Notifications are ordinary transactional outbox messages (the sandbox inbox shows them
with no provider configured), queued inside the action's transaction: if the action rolls
back, nobody is told about something that did not happen.
"""

import logging

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse

from marketing.campaigns.states import authors
from marketing.models import Campaign
from messaging import site
from messaging.delivery.outbox import enqueue_message
from messaging.errors import MailroomError
from messaging.models import Channel, OutboxMessage

logger = logging.getLogger(__name__)


def approvers_for(campaign: Campaign):
    User = get_user_model()
    perm = Q(groups__permissions__codename="approve_campaign") | Q(user_permissions__codename="approve_campaign") | Q(is_superuser=True)
    return User.objects.filter(perm, is_active=True).exclude(pk__in=authors(campaign)).exclude(email="").distinct()


def _link(campaign: Campaign, name: str = "admin:marketing_campaign_overview") -> str:
    args = [] if name.endswith("approvals") else [campaign.pk]
    return site.current().link(reverse(name, args=args))


def _send(*, to: str, subject: str, text: str, context: dict, key: str) -> None:
    try:
        enqueue_message(
            channel=Channel.EMAIL,
            to=to,
            subject=subject,
            text=text + "\n\n{{ link }}\n",
            context=context,
            priority=OutboxMessage.Priority.HIGH,
            dedup_key=key,
            metadata={"notification": "campaign"},
        )
    except MailroomError:  # a staff member without a usable address must not block the action
        logger.warning("could not notify %s about a campaign", to, exc_info=True)


def notify_approvers(*, campaign: Campaign) -> int:
    users = list(approvers_for(campaign))
    submitted = campaign.submitted_at.isoformat() if campaign.submitted_at else ""
    for user in users:
        _send(
            to=user.email,
            subject="Waiting for your approval: {{ name }}",
            text="{{ author }} submitted the campaign “{{ name }}”. Review it in the approval queue:",
            context={
                "name": campaign.name,
                "author": str(campaign.created_by),
                "link": _link(campaign, "admin:marketing_campaign_approvals"),
            },
            key=f"campaign-approval:{campaign.pk}:{user.pk}:{submitted}",
        )
    return len(users)


def notify_author(*, campaign: Campaign, subject: str, text: str, extra: dict | None = None) -> None:
    author = campaign.created_by
    if not author.email:
        return
    approver = campaign.approved_by or campaign.rejected_by
    context = {"name": campaign.name, "approver": str(approver) if approver else "", "link": _link(campaign), **(extra or {})}
    _send(to=author.email, subject=subject, text=text, context=context, key=None)
