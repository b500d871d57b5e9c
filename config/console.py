"""The console shell: sidebar, dashboard and placeholder pages, all read by Unfold from
settings.UNFOLD. Sidebar entries only hide links; every view checks permissions itself.
"""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.views import UnfoldSiteViewMixin

from messaging import queries

# Areas of the design that have no page yet: they show what is coming instead of a 404.
COMING_SOON: dict[str, tuple[str, str]] = {
    "segments": (_("Segments"), _("Dynamic and static segments with a live member count.")),
    "campaigns": (_("Campaigns"), _("Campaigns with approval, scheduling and A/B tests.")),
    "calendar": (_("Calendar"), _("Month and week views of every scheduled send.")),
    "approvals": (_("Approval queue"), _("Campaigns waiting for a second pair of eyes.")),
    "automations": (_("Automations"), _("Triggered and scheduled flows with ready presets.")),
    "referrals": (_("Referrals"), _("Referral programs with fraud rules.")),
    "loyalty": (_("Loyalty"), _("Points, tiers and an append-only ledger.")),
    "gift-cards": (_("Gift cards"), _("Gift cards with partial redemption.")),
    "reports": (_("Reports"), _("Delivery, engagement and revenue charts.")),
}


def _perm(codename: str) -> Callable[[HttpRequest], bool]:
    return lambda request: request.user.has_perm(codename)


def _staff(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.is_staff


def _item(title: Any, icon: str, link: str, permission: Callable[[HttpRequest], bool]) -> dict[str, Any]:
    return {
        "title": title,
        "icon": icon,
        "link": link,
        "permission": permission,
        # Unfold's default is a substring match, which lights two items on nested paths.
        "active": lambda request, link=link: request.path.startswith(link),
    }


def _coming(slug: str, icon: str) -> dict[str, Any]:
    return _item(COMING_SOON[slug][0], icon, reverse("admin:coming_soon", args=[slug]), _staff)


def _changelist(model: str, title: Any, icon: str) -> dict[str, Any]:
    app_label, name = model.split(".")
    return _item(title, icon, reverse(f"admin:{app_label}_{name}_changelist"), _perm(f"{app_label}.view_{name}"))


def sidebar_navigation(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "title": _("Overview"),
            "items": [_item(_("Dashboard"), "dashboard", reverse("admin:index"), _staff)],
        },
        {
            "title": _("Audience"),
            "collapsible": True,
            "items": [
                _changelist("messaging.contact", _("Contacts"), "group"),
                _changelist("messaging.topic", _("Topics"), "label"),
                _changelist("messaging.subscription", _("Subscriptions"), "how_to_reg"),
                _changelist("messaging.consentrecord", _("Consent log"), "verified_user"),
                _coming("segments", "filter_alt"),
            ],
        },
        {
            "title": _("Content"),
            "collapsible": True,
            "items": [_changelist("messaging.template", _("Templates"), "draft")],
        },
        {
            "title": _("Campaigns"),
            "collapsible": True,
            "items": [_coming("campaigns", "campaign"), _coming("calendar", "calendar_month"), _coming("approvals", "task_alt")],
        },
        {
            "title": _("Automations"),
            "collapsible": True,
            "items": [_coming("automations", "bolt")],
        },
        {
            "title": _("Growth"),
            "collapsible": True,
            "items": [_coming("referrals", "share"), _coming("loyalty", "loyalty"), _coming("gift-cards", "redeem")],
        },
        {
            "title": _("Delivery"),
            "collapsible": True,
            "items": [
                _changelist("messaging.outboxmessage", _("Outbox"), "outbox"),
                _changelist("messaging.provider", _("Providers"), "dns"),
                _changelist("messaging.sandboxmessage", _("Sandbox inbox"), "inbox"),
                _changelist("messaging.inboxmessage", _("Inbound messages"), "move_to_inbox"),
                _changelist("messaging.inbox", _("Inboxes"), "alternate_email"),
                _changelist("messaging.suppression", _("Suppressions"), "block"),
            ],
        },
        {
            "title": _("Analytics"),
            "collapsible": True,
            "items": [_coming("reports", "monitoring")],
        },
        {
            "title": _("Settings"),
            "collapsible": True,
            "items": [
                _changelist("auth.user", _("Users"), "person"),
                _changelist("auth.group", _("Roles"), "groups"),
                _changelist("messaging.auditentry", _("Audit trail"), "history"),
                _changelist("django_q.schedule", _("Scheduled jobs"), "schedule"),
                _changelist("django_q.failure", _("Failed jobs"), "error"),
            ],
        },
    ]


def environment_badge(request: HttpRequest) -> list[str] | None:
    if settings.DEBUG:
        return [str(_("Debug")), "warning"]
    return None


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Today's figures and a 14-day consent chart for the console home page."""
    figures = queries.audience_figures()
    first_day = queries.start_of_today().date() - timedelta(days=13)
    days = [(first_day + timedelta(days=n)).isoformat() for n in range(14)]
    per_day = {day: {"granted": 0, "withdrawn": 0} for day in days}
    for row in queries.consents_per_day(days=14):
        per_day.setdefault(row["day"].isoformat(), {"granted": 0, "withdrawn": 0})[row["action"]] = row["total"]
    chart = {
        "labels": days,
        "datasets": [
            {"label": str(_("Granted")), "data": [per_day[d]["granted"] for d in days], "backgroundColor": "var(--color-primary-600)"},
            {"label": str(_("Withdrawn")), "data": [per_day[d]["withdrawn"] for d in days], "backgroundColor": "var(--color-base-400)"},
        ],
    }
    context.update(
        {
            "kpis": [
                {
                    "title": _("Contacts"),
                    "value": figures["contacts"],
                    "footer": ngettext("%(n)s new today", "%(n)s new today", figures["contacts_today"]) % {"n": figures["contacts_today"]},
                },
                {"title": _("Active subscriptions"), "value": figures["subscriptions"], "footer": _("across every topic and channel")},
                {
                    "title": _("Consents today"),
                    "value": figures["consents_today"],
                    "footer": ngettext("%(n)s withdrawal", "%(n)s withdrawals", figures["withdrawals_today"])
                    % {"n": figures["withdrawals_today"]},
                },
                {"title": _("Suppressed addresses"), "value": figures["suppressions"], "footer": _("never sent to")},
            ],
            "consent_chart": json.dumps(chart),
            "topics": list(queries.subscribers_per_topic()),
        }
    )
    return context


class ComingSoonView(UnfoldSiteViewMixin):
    """A placeholder for an area of the design that has not shipped yet."""

    title = _("Coming soon")

    def has_permission(self) -> bool:
        # Any active staff member may read a placeholder; it shows no data.
        return _staff(self.request)

    def get(self, request: HttpRequest, area: str) -> TemplateResponse:
        if area not in COMING_SOON:
            raise Http404
        name, description = COMING_SOON[area]
        self.title = name
        context = self.get_context_data(area_name=name, area_description=description)
        return TemplateResponse(request, "console/coming_soon.html", context)
