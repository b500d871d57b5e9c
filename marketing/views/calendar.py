"""The campaign calendar: month and week views of scheduled, sending and sent campaigns
(and other scheduled sends), coloured by state, filtered by channel and topic. A scheduled
campaign can be dragged to another day; the server re-checks through `reschedule_campaign`."""

import calendar as pycalendar
from datetime import UTC, date, datetime, timedelta

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

from marketing.campaigns import actions, policies, queries
from marketing.models import Campaign
from messaging.errors import MailroomError
from messaging.ids import parse_id
from messaging.models import Topic

STATE_COLOURS = {
    Campaign.State.APPROVED: "bg-amber-100 text-amber-900 border-amber-300",
    Campaign.State.SCHEDULED: "bg-sky-100 text-sky-900 border-sky-300",
    Campaign.State.SENDING: "bg-violet-100 text-violet-900 border-violet-300",
    Campaign.State.PAUSED: "bg-orange-100 text-orange-900 border-orange-300",
    Campaign.State.SENT: "bg-green-100 text-green-900 border-green-300",
}


def _parse_day(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else timezone.localdate()
    except ValueError:
        return timezone.localdate()


class CalendarView(UnfoldModelAdminViewMixin, TemplateView):
    title = gettext_lazy("Calendar")
    template_name = "console/campaigns/calendar.html"
    permission_required = ("marketing.view_campaign",)

    def get_context_data(self, **kwargs) -> dict:
        request = self.request
        mode = "week" if request.GET.get("view") == "week" else "month"
        day = _parse_day(request.GET.get("date"))
        channel = request.GET.get("channel", "")
        topic = request.GET.get("topic", "")
        topic_id = parse_id(topic)
        if mode == "week":
            first = day - timedelta(days=day.weekday())
            days = [first + timedelta(days=n) for n in range(7)]
            previous, following = first - timedelta(days=7), first + timedelta(days=7)
        else:
            weeks = pycalendar.Calendar(firstweekday=0).monthdatescalendar(day.year, day.month)
            days = [d for week in weeks for d in week]
            previous = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
            following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        start = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
        end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        can_move = policies.can_send_campaign(request.user)
        by_day: dict[date, list] = {d: [] for d in days}
        for campaign in queries.calendar_campaigns(start=start, end=end, channel=channel, topic=topic_id):
            when = timezone.localtime(campaign.send_at)
            by_day.setdefault(when.date(), []).append(
                {
                    "campaign": campaign,
                    "time": when.strftime("%H:%M"),
                    "colour": STATE_COLOURS.get(campaign.state, ""),
                    "draggable": can_move and campaign.state == Campaign.State.SCHEDULED,
                    "url": reverse("admin:marketing_campaign_overview", args=[campaign.pk]),
                }
            )
        others: dict[date, list] = {}
        for row in queries.scheduled_other_sends(start=start, end=end, channel=channel, topic=topic_id):
            others.setdefault(row["scheduled_at__date"], []).append(row)
        context = super().get_context_data(**kwargs)
        context.update(
            mode=mode,
            day=day,
            month=day.replace(day=1),
            weeks=[[(d, by_day.get(d, []), others.get(d, [])) for d in days[i : i + 7]] for i in range(0, len(days), 7)],
            today=timezone.localdate(),
            previous=previous,
            following=following,
            channel=channel,
            topic=topic,
            channels=Campaign.CHANNELS,
            topics=Topic.objects.all(),
            legend=[(Campaign.State(state).label, colour) for state, colour in STATE_COLOURS.items()],
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
