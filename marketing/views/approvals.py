"""The approval queue: every campaign waiting for a second pair of eyes, with a preview,
the audience count, the dry run and approve / reject buttons; and every automation that
fans out to many contacts and waits for its approval (see marketing.automations.approval)."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from marketing import policies as marketing_policies
from marketing.automations.approval import authors, waiting_for_approval
from marketing.automations.describe import describe_automation_trigger, describe_exits, describe_step
from marketing.campaigns import policies, queries, states
from marketing.campaigns.preview import dry_run
from marketing.forms import RejectForm
from marketing.review import submission_token


class ApprovalQueueView(UnfoldModelAdminViewMixin, TemplateView):
    title = gettext_lazy("Approval queue")
    template_name = "console/campaigns/approvals.html"
    permission_required = ("marketing.approve_campaign",)

    def has_permission(self) -> bool:
        user = self.request.user
        return policies.can_approve_campaign(user) or marketing_policies.can_approve_automations(user)

    def get_context_data(self, **kwargs) -> dict:
        user = self.request.user
        if not self.has_permission():
            raise PermissionDenied
        items = []
        if policies.can_approve_campaign(user):
            for campaign in queries.pending_approval().order_by("submitted_at", "pk"):
                result = dry_run(campaign=campaign, sample_size=1)
                items.append(
                    {
                        "campaign": campaign,
                        "result": result,
                        "preview": result.samples[0] if result.samples else None,
                        "own": states.is_author(campaign, user),
                        "seen": submission_token(campaign.submitted_at),
                    }
                )
        automations = []
        if marketing_policies.can_approve_automations(user):
            for automation in waiting_for_approval().prefetch_related("steps").order_by("submitted_at", "pk"):
                automations.append(
                    {
                        "automation": automation,
                        "trigger": describe_automation_trigger(automation),
                        "exits": describe_exits(automation.exit_events),
                        "steps": [describe_step(step.kind, step.config) for step in automation.steps.all()],
                        "own": user.pk in authors(automation),
                        "seen": submission_token(automation.submitted_at),
                    }
                )
        context = super().get_context_data(**kwargs)
        context.update(items=items, automations=automations, reject_form=RejectForm())
        return context
