"""Console notices for the people who run delivery (Ops, Admin: policies.can_watch_operations):
a provider resting, a late or large backlog, a cluster that stopped beating. The dashboard
lists them and the sidebar's Dashboard entry carries their number on every console page.

The rules are messaging.health's (the same `manage.py doctor` and /metrics use). Their facts
cost a few index probes; they are kept in the per-process "local" cache for
MAILROOM_NOTICES_CACHE_SECONDS, so a console page costs no query for them most of the time.
The words are built per request (the reader's language), from the cached facts.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import caches
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from messaging import health, policies
from messaging.models import Channel

CACHE_KEY = "mailroom:notices:facts"


@dataclass(frozen=True)
class Notice:
    kind: str  # provider_resting, backlog_late, backlog_large, heartbeat_missing
    level: str  # "warning" or "danger"
    title: str
    text: str
    action: str  # what to do about it
    link: str = ""


def facts() -> dict:
    """The figures behind the notices, cached per process for a few seconds."""
    cache = caches["local"]
    cached = cache.get(CACHE_KEY)
    if cached is not None:
        return cached
    backlog = health.backlog()
    found = {
        "resting": [(p.name, p.channel, p.resting_until, p.consecutive_failures) for p in health.resting_providers()],
        "backlog": backlog,
        "heartbeat_age": health.heartbeat_age(),
    }
    if settings.MAILROOM_NOTICES_CACHE_SECONDS:
        cache.set(CACHE_KEY, found, timeout=settings.MAILROOM_NOTICES_CACHE_SECONDS)
    return found


def forget() -> None:
    caches["local"].delete(CACHE_KEY)


def _when(moment: datetime.datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 2:
        return ngettext("%(n)s second", "%(n)s seconds", int(seconds)) % {"n": int(seconds)}
    if minutes < 120:
        return ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}
    hours = minutes // 60
    return ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours}


def notices_for(user: AbstractBaseUser | AnonymousUser) -> list[Notice]:
    """The notices `user` should see now (none for anyone who does not run delivery)."""
    if not policies.can_watch_operations(user):
        return []
    found = facts()
    notices = []
    providers_link = reverse("admin:messaging_provider_changelist")
    for name, channel, until, failures in found["resting"]:
        notices.append(
            Notice(
                kind="provider_resting",
                level="warning",
                title=_("Provider %(name)s (%(channel)s) is resting") % {"name": name, "channel": Channel(channel).label},
                text=ngettext(
                    "It failed %(n)s time in a row; Mailroom sends through the next provider of the channel until %(until)s.",
                    "It failed %(n)s times in a row; Mailroom sends through the next provider of the channel until %(until)s.",
                    failures,
                )
                % {"n": failures, "until": _when(until)},
                action=_("Open the provider to read its last error and fix its settings or the service; it is tried again after the rest."),
                link=providers_link,
            )
        )
    backlog: health.Backlog = found["backlog"]
    outbox_link = reverse("admin:messaging_outboxmessage_changelist") + "?status__exact=queued"
    if backlog.late:
        waited = (timezone.now() - backlog.oldest_due_at).total_seconds()
        notices.append(
            Notice(
                kind="backlog_late",
                level="danger",
                title=_("Messages are waiting to be sent"),
                text=_("The oldest due message has waited %(duration)s (the alert is at %(minutes)s minutes).")
                % {"duration": _duration(waited), "minutes": settings.MAILROOM_BACKLOG_ALERT_MINUTES},
                action=_(
                    "Check that the cluster runs and that the channel has a provider that is not resting; "
                    "a large campaign drains faster with more cluster workers (MAILROOM_Q_WORKERS)."
                ),
                link=outbox_link,
            )
        )
    if backlog.large:
        notices.append(
            Notice(
                kind="backlog_large",
                level="warning",
                title=_("The outbox backlog is large"),
                text=_("More than %(count)s messages are due now.") % {"count": settings.MAILROOM_BACKLOG_ALERT_COUNT},
                action=_(
                    "A campaign that just started is expected to do this for a while; if the figure keeps growing, "
                    "add cluster workers or check the providers' rate limits."
                ),
                link=outbox_link,
            )
        )
    age = found["heartbeat_age"]
    if health.heartbeat_is_missing(age):
        notices.append(
            Notice(
                kind="heartbeat_missing",
                level="danger",
                title=_("No task cluster is running"),
                text=_("No cluster has run its minute heartbeat yet: nothing is sent, retried or scheduled.")
                if age is None
                else _("The cluster's last heartbeat was %(duration)s ago: nothing is sent, retried or scheduled.")
                % {"duration": _duration(age)},
                action=_(
                    "Start the cluster: make run starts one; in production run `manage.py run_cluster` (the Procfile's "
                    "cluster process) or django-q2's `manage.py qcluster`."
                ),
                link=reverse("admin:django_q_schedule_changelist"),
            )
        )
    return notices
