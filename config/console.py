"""The console shell: sidebar, dashboard and placeholder pages, all read by Unfold from
settings.UNFOLD. Sidebar entries only hide links; every view checks permissions itself.
"""

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from marketing.models import Automation, Campaign
from messaging import notices, policies, queries


def _perm(codename: str) -> Callable[[HttpRequest], bool]:
    return lambda request: request.user.has_perm(codename)


def _can_approve(request: HttpRequest) -> bool:
    """Campaigns and fan-out automations share the approval queue."""
    return request.user.has_perm("marketing.approve_campaign") or request.user.has_perm("marketing.approve_automation")


def _can_manage_settings(request: HttpRequest) -> bool:
    return policies.can_manage_settings(request.user)


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


def _changelist(model: str, title: Any, icon: str) -> dict[str, Any]:
    app_label, name = model.split(".")
    return _item(title, icon, reverse(f"admin:{app_label}_{name}_changelist"), _perm(f"{app_label}.view_{name}"))


def sidebar_navigation(request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {
            "title": _("Overview"),
            # The dashboard's link is a prefix of every page: only its own path lights it.
            "items": [
                {
                    **_item(_("Dashboard"), "dashboard", reverse("admin:index"), _staff),
                    "active": lambda request: request.path == reverse("admin:index"),
                    "badge": "config.console.notices_badge",  # operators' notices, listed on the dashboard
                }
            ],
        },
        {
            "title": _("Audience"),
            "collapsible": True,
            "items": [
                _changelist("messaging.contact", _("Contacts"), "group"),
                _changelist("messaging.importjob", _("Import jobs"), "upload_file"),
                _changelist("messaging.topic", _("Topics"), "label"),
                _changelist("messaging.subscription", _("Subscriptions"), "how_to_reg"),
                _changelist("messaging.consentrecord", _("Consent log"), "verified_user"),
                _changelist("messaging.signupform", _("Sign-up forms"), "app_registration"),
                _changelist("marketing.segment", _("Segments"), "filter_alt"),
                _changelist("marketing.event", _("Events"), "timeline"),
                _changelist("marketing.order", _("Orders"), "shopping_cart"),
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
            "items": [
                _item(_("Campaigns"), "campaign", reverse("admin:marketing_campaign_changelist"), _perm("marketing.view_campaign")),
                _item(_("Calendar"), "calendar_month", reverse("admin:marketing_campaign_calendar"), _perm("marketing.view_campaign")),
                {
                    **_item(_("Approval queue"), "task_alt", reverse("admin:marketing_campaign_approvals"), _can_approve),
                    "badge": "config.console.approval_badge",
                },
            ],
        },
        {
            "title": _("Automations"),
            "collapsible": True,
            "items": [
                _changelist("marketing.automation", _("Automations"), "bolt"),
                _item(
                    _("Preset gallery"), "auto_awesome", reverse("admin:marketing_automation_presets"), _perm("marketing.add_automation")
                ),
                _changelist("marketing.automationrun", _("Runs"), "route"),
                _changelist("marketing.paymentwebhookevent", _("Payment webhooks"), "webhook"),
            ],
        },
        {
            "title": _("Growth"),
            "collapsible": True,
            "items": [
                _changelist("growth.referral", _("Referrals"), "share"),
                _changelist("growth.referralprogram", _("Referral programs"), "campaign"),
                _changelist("growth.couponcode", _("Referral coupons"), "confirmation_number"),
                _changelist("growth.loyaltyaccount", _("Loyalty accounts"), "loyalty"),
                _changelist("growth.loyaltytransaction", _("Points ledger"), "receipt_long"),
                _changelist("growth.loyaltyprogram", _("Loyalty programs"), "military_tech"),
                _changelist("growth.giftcard", _("Gift cards"), "redeem"),
                _changelist("growth.giftcardtransaction", _("Gift-card ledger"), "account_balance_wallet"),
                _item(_("Customer growth"), "person_search", reverse("admin:growth_customers"), _perm("growth.view_loyaltyaccount")),
                _item(_("Growth report"), "bar_chart", reverse("admin:growth_report"), _perm("growth.view_loyaltyaccount")),
            ],
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
            "items": [_item(_("Reports"), "monitoring", reverse("admin:analytics"), _perm("marketing.view_dailystat"))],
        },
        {
            "title": _("Settings"),
            "collapsible": True,
            "items": [
                _item(_("Sending settings"), "outgoing_mail", reverse("admin:site_settings"), _can_manage_settings),
                _changelist("auth.user", _("Users"), "person"),
                _changelist("auth.group", _("Roles"), "groups"),
                _changelist("messaging.auditentry", _("Audit trail"), "history"),
                _changelist("messaging.apikey", _("API keys"), "key"),
                {**_changelist("messaging.webhookendpoint", _("Webhooks"), "webhook"), "badge": "config.console.webhooks_badge"},
                _changelist("messaging.webhookdelivery", _("Webhook deliveries"), "send"),
                _item(_("API docs"), "api", reverse("api:swagger-ui"), _staff),
                _changelist("django_q.schedule", _("Scheduled jobs"), "schedule"),
                _changelist("django_q.failure", _("Failed jobs"), "error"),
            ],
        },
    ]


def approval_badge(request: HttpRequest) -> int | str:
    """How many campaigns and automations wait for approval (indexed counts per page)."""

    count = Campaign.objects.filter(state=Campaign.State.PENDING_APPROVAL).count()
    count += Automation.objects.filter(state=Automation.State.PENDING_APPROVAL).count()
    return count or ""


def webhooks_badge(request: HttpRequest) -> int | str:
    """How many webhook endpoints were turned off after failing (a handful of rows at most)."""
    if not policies.can_view_webhooks(request.user):
        return ""
    return queries.webhook_endpoints_turned_off().count() or ""


def notices_badge(request: HttpRequest) -> int | str:
    """How many operator notices are up (resting provider, late backlog, no cluster), for Ops
    and Admin only. Their facts are cached per process for a few seconds (messaging.notices)."""
    return len(notices.notices_for(request.user)) or ""


def environment_badge(request: HttpRequest) -> list[str] | None:
    if settings.DEBUG:
        return [str(_("Debug")), "warning"]
    return None


def shown(figure: queries.Figure) -> str | int:
    """A dashboard figure: the number when it was counted; "about 1,230,000" (three
    significant digits) when it is the planner's estimate."""
    if not figure.is_estimate:
        return figure.value
    rounded = round(figure.value, -max(len(str(figure.value)) - 3, 0))
    return _("about %(n)s") % {"n": number_format(rounded, force_grouping=True)}


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Today's figures and a 14-day consent chart for the console home page. Figures over
    large tables are the planner's estimates, marked "about" (queries.counted)."""
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
    new_today, withdrawals = figures["contacts_today"], figures["withdrawals_today"]
    context.update(
        {
            "kpis": [
                {
                    "title": _("Contacts"),
                    "value": shown(figures["contacts"]),
                    "footer": ngettext("%(n)s new today", "%(n)s new today", new_today.value) % {"n": shown(new_today)},
                },
                {
                    "title": _("Active subscriptions"),
                    "value": shown(figures["subscriptions"]),
                    "footer": _("across every topic and channel"),
                },
                {
                    "title": _("Consents today"),
                    "value": shown(figures["consents_today"]),
                    "footer": ngettext("%(n)s withdrawal", "%(n)s withdrawals", withdrawals.value) % {"n": shown(withdrawals)},
                },
                {"title": _("Suppressed addresses"), "value": shown(figures["suppressions"]), "footer": _("never sent to")},
            ],
            "consent_chart": json.dumps(chart),
            "topics": [{"name": topic.localized_name, "total": shown(figure)} for topic, figure in queries.subscribers_per_topic()],
            "notices": notices.notices_for(request.user),
        }
    )
    return context


def sidebar_place(request: HttpRequest) -> tuple[Any, dict[str, Any]] | None:
    """(group title, item) of the sidebar entry the current page belongs to: the item whose
    link is the longest prefix of the path (its own `active` rule decides), else None."""
    best: tuple[Any, dict[str, Any]] | None = None
    for group in sidebar_navigation(request):
        for item in group["items"]:
            if item["active"](request) and (best is None or len(item["link"]) > len(best[1]["link"])):
                best = (group["title"], item)
    return best


def sidebar_breadcrumbs(request: HttpRequest, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unfold's header parts (app › model › object) with the app replaced by the sidebar
    group of the page ("Messaging › contacts" becomes "Audience › Contacts"); a page
    without a model (calendar, analytics…) gets its group in front of its title."""
    place = sidebar_place(request) if request is not None else None
    if place is None or not parts or request.path == reverse("admin:index"):
        return parts
    group, item = place
    crumbs = [dict(part) for part in parts]
    first_link = crumbs[0].get("link") or ""
    if re.fullmatch(r"/admin/\w+/", first_link):  # Unfold's app index link: the group replaces it
        crumbs[0] = {"title": group, "link": ""}
    elif str(crumbs[0].get("title", "")).casefold() != str(group).casefold():
        crumbs.insert(0, {"title": group, "link": ""})
    for crumb in crumbs[1:]:
        if crumb.get("link") == item["link"]:
            crumb["title"] = item["title"]  # the sidebar's name for the list ("Consent log", "Roles")
    if len(crumbs) > 1 and str(crumbs[1]["title"]).casefold() == str(group).casefold():
        crumbs.pop(0)  # "Campaigns › Campaigns › Calendar" says the group once
    return crumbs
