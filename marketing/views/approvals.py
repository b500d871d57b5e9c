"""The approval queue: every campaign waiting for a second pair of eyes, with a preview,
the audience count, the dry run and approve / reject buttons."""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from marketing.campaigns import policies, queries
from marketing.campaigns.audience import dry_run
from marketing.forms import RejectForm


class ApprovalQueueView(UnfoldModelAdminViewMixin, TemplateView):
    title = gettext_lazy("Approval queue")
    template_name = "console/campaigns/approvals.html"
    permission_required = ("marketing.approve_campaign",)

    def get_context_data(self, **kwargs) -> dict:
        if not policies.can_approve_campaign(self.request.user):
            raise PermissionDenied
        items = []
        for campaign in queries.pending_approval().order_by("submitted_at", "pk"):
            result = dry_run(campaign=campaign, sample_size=1)
            items.append(
                {
                    "campaign": campaign,
                    "result": result,
                    "preview": result.samples[0] if result.samples else None,
                    "own": campaign.created_by_id == self.request.user.pk,
                }
            )
        context = super().get_context_data(**kwargs)
        context.update(items=items, reject_form=RejectForm())
        return context
