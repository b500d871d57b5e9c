"""The campaign calendar: month and week views of every campaign with a send time (and the
automations' scheduled sends), coloured by state, filtered by channel and topic, times in the
console's time zone. A scheduled campaign can be dragged to another day; the server re-checks
through `reschedule_campaign`, which withdraws its approval. Styles: static/mailroom/calendar.css
(Unfold's compiled CSS has only the Tailwind classes its own templates use)."""

import calendar as pycalendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View
from unfold.views import UnfoldModelAdminViewMixin

from marketing.automations.describe import describe_automation_trigger
from marketing.campaigns import actions, policies, queries, states
from marketing.models import Campaign
from messaging.errors import MailroomError
from messaging.ids import parse_id
from messaging.models import Topic

# The states the calendar shows, in the order of the legend; each has its colour in
# static/mailroom/calendar.css (`.mr-cal-chip--<state>`).
LEGEND_STATES = (
    Campaign.State.DRAFT,
    Campaign.State.PENDING_APPROVAL,
    Campaign.State.APPROVED,
    Campaign.State.SCHEDULED,
    Campaign.State.SENDING,
    Campaign.State.SENT,
    Campaign.State.PAUSED,
    Campaign.State.CANCELLED,
)
MONTH_VISIBLE = 3  # campaigns listed in a month cell; the rest are a link to that week
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


@dataclass
class Day:
    date: date
    items: list[dict] = field(default_factory=list)
    others: list[dict] = field(default_factory=list)
    is_today: bool = False
    is_outside: bool = False  # in the month grid, a day of the previous or next month
    is_past: bool = False
    more: int = 0
    week_url: str = ""


def _parse_day(value: str | None, notices: list[str]) -> date:
    if not value:
        return timezone.localdate()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        notices.append(_("“%(value)s” is not a date: give one as YYYY-MM-DD. Showing the current month instead.") % {"value": value})
        return timezone.localdate()
    if not FIRST_DAY <= day <= LAST_DAY:
        notices.append(_("The calendar covers 1900 to 2999. Showing the current month instead."))
        return timezone.localdate()
    return day


def _midnight(day: date) -> datetime:
    """The start of `day` in the console's time zone (the one times are shown in)."""
    return timezone.make_aware(datetime.combine(day, time.min))


class CalendarView(UnfoldModelAdminViewMixin, TemplateView):
    title = gettext_lazy("Calendar")
    template_name = "console/campaigns/calendar.html"
    permission_required = ("marketing.view_campaign",)

    def get_context_data(self, **kwargs) -> dict:
        request = self.request
        notices: list[str] = []
        mode = request.GET.get("view") or "month"
        if mode not in ("month", "week"):
            notices.append(_("There is no “%(value)s” view: showing the month.") % {"value": mode})
            mode = "month"
        day = _parse_day(request.GET.get("date"), notices)
        channel = request.GET.get("channel", "")
        if channel and channel not in dict(Campaign.CHANNELS):
            notices.append(_("There is no “%(value)s” channel: showing every channel.") % {"value": channel})
            channel = ""
        topics = list(Topic.objects.order_by("name"))
        topic = request.GET.get("topic", "")
        topic_id = parse_id(topic)
        if topic and topic_id not in {t.pk for t in topics}:
            notices.append(_("There is no such topic: showing every topic."))
            topic, topic_id = "", None

        today = timezone.localdate()
        if mode == "week":
            first = day - timedelta(days=day.weekday())
            dates = [first + timedelta(days=n) for n in range(7)]
            previous, following = first - timedelta(days=7), first + timedelta(days=7)
        else:
            weeks = pycalendar.Calendar(firstweekday=0).monthdatescalendar(day.year, day.month)
            dates = [d for week in weeks for d in week]
            previous = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
            following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)

        def url(**params) -> str:
            values = {"view": mode, "date": day.isoformat(), "channel": channel, "topic": topic, **params}
            return "?" + urlencode({key: value for key, value in values.items() if value})

        days = {d: Day(date=d, is_today=d == today, is_past=d < today, is_outside=mode == "month" and d.month != day.month) for d in dates}
        can_move = policies.can_send_campaign(request.user)
        start, end = _midnight(dates[0]), _midnight(dates[-1] + timedelta(days=1))
        for campaign in queries.calendar_campaigns(start=start, end=end, channel=channel, topic=topic_id):
            when = timezone.localtime(campaign.send_at)
            if when.date() not in days:
                continue
            days[when.date()].items.append(
                {
                    "campaign": campaign,
                    "time": when.strftime("%H:%M"),
                    "draggable": can_move and states.can_reschedule(campaign),
                    "url": reverse("admin:marketing_campaign_overview", args=[campaign.pk]),
                }
            )
        # the automation id comes out of JSON metadata: text on PostgreSQL, a number on SQLite
        others = [
            {**row, "automation": str(row["automation"])}
            for row in queries.scheduled_other_sends(start=start, end=end, channel=channel, topic=topic_id)
        ]
        found = queries.automations_by_id({parse_id(row["automation"]) for row in others} - {None})
        names = {pk: automation.name for pk, automation in found.items()}
        for row in others:
            automation_id = parse_id(row["automation"])
            if row["scheduled_at__date"] in days:
                days[row["scheduled_at__date"]].others.append(
                    {
                        "automation": row["automation"],
                        "name": names.get(automation_id, ""),
                        "trigger": describe_automation_trigger(found[automation_id]) if automation_id in found else "",
                        "n": row["n"],
                        "url": reverse("admin:marketing_automation_flow", args=[automation_id]) if automation_id in names else "",
                    }
                )
        if mode == "month":
            for cell in days.values():
                cell.more = max(0, len(cell.items) - MONTH_VISIBLE)
                cell.items = cell.items[:MONTH_VISIBLE]
                cell.week_url = url(view="week", date=cell.date.isoformat())
        cells = list(days.values())

        context = super().get_context_data(**kwargs)
        context.update(
            mode=mode,
            day=day,
            month=day.replace(day=1),
            first=dates[0],
            last=dates[-1],
            weeks=[cells[i : i + 7] for i in range(0, len(cells), 7)],
            weekdays=dates[:7],
            today=today,
            empty=not any(cell.items or cell.others or cell.more for cell in cells),
            notices=notices,
            time_zone=timezone.get_current_timezone_name(),
            previous_url=url(date=previous.isoformat()),
            next_url=url(date=following.isoformat()),
            today_url=url(date=today.isoformat()),
            month_url=url(view="month"),
            week_url=url(view="week"),
            channel=channel,
            topic=topic,
            channels=Campaign.CHANNELS,
            topics=topics,
            legend=[(state.value, state.label) for state in LEGEND_STATES],
            can_move=can_move,
            reschedule_url=reverse("admin:marketing_campaign_reschedule", args=[0]).replace("/0/", "/{id}/"),
        )
        return context


class RescheduleView(UnfoldModelAdminViewMixin, View):
    """POST date=YYYY-MM-DD (keeps the time of day) or send_at=ISO; answers JSON."""

    title = gettext_lazy("Reschedule")
    permission_required = ("marketing.view_campaign",)

    def get(self, request: HttpRequest, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request: HttpRequest, pk: int) -> JsonResponse:
        if not policies.can_send_campaign(request.user):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            if request.POST.get("send_at"):
                send_at = datetime.fromisoformat(request.POST["send_at"])
                if timezone.is_naive(send_at):
                    send_at = timezone.make_aware(send_at)
            else:
                new_day = date.fromisoformat(request.POST.get("date", ""))
                current = timezone.localtime(campaign.send_at) if campaign.send_at else timezone.localtime()
                send_at = current.replace(year=new_day.year, month=new_day.month, day=new_day.day)
        except ValueError:
            return JsonResponse({"ok": False, "error": _("Give a date as YYYY-MM-DD.")}, status=400)
        try:
            campaign = actions.reschedule_campaign(actor=request.user, campaign=campaign, send_at=send_at)
        except MailroomError as error:
            return JsonResponse({"ok": False, "error": str(error)}, status=409)
        notice = _("“%(name)s” moved: it is a draft again and needs a new approval.") % {"name": campaign.name}
        if campaign.state == Campaign.State.DRAFT:
            messages.warning(request, notice)  # shown after the calendar reloads
        return JsonResponse(
            {
                "ok": True,
                "send_at": campaign.send_at.isoformat(),
                "state": campaign.state,
                "message": notice if campaign.state == Campaign.State.DRAFT else "",
            }
        )
