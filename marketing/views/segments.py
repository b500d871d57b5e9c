"""The segment builder: Unfold pages mounted on SegmentAdmin. Thin: parse the posted
tree, call the segment actions, render. The live count runs the compiled query."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from marketing import policies
from marketing.models import Segment
from marketing.segments.actions import (
    add_static_members,
    create_segment,
    duplicate_segment,
    preview_rules,
    refresh_segment,
    remove_static_members,
    update_segment,
)
from marketing.segments.fields.registry import NO_VALUE_OPERATORS, OPERATOR_LABELS, segment_fields
from marketing.segments.tree_form import apply_edit, tree_from_form, with_paths
from messaging.errors import InvalidInput, MailroomError
from messaging.models import Channel


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=150, label=gettext_lazy("Name"))
    description = forms.CharField(required=False, widget=forms.Textarea, label=gettext_lazy("Description"))
    kind = forms.ChoiceField(choices=Segment.Kind.choices, initial=Segment.Kind.DYNAMIC, label=gettext_lazy("Kind"))


def field_catalogue() -> list[dict]:
    """Fields grouped for the field picker, with what each needs."""
    groups: dict[str, list] = {}
    for field in segment_fields().values():
        groups.setdefault(str(field.group), []).append(field)
    return [{"group": name, "fields": fields} for name, fields in groups.items()]


def _decorate(node: dict, fields: dict) -> dict:
    """Give each rule its field's metadata and operator choices, for the template."""
    if node.get("type") == "group":
        node["rules"] = [_decorate(child, fields) for child in node["rules"]]
        return node
    field = fields.get(node.get("field"))
    node["meta"] = field
    if field is not None:
        node["operators"] = [(op, str(OPERATOR_LABELS.get(op, op))) for op in field.operators]
        node["needs_value"] = node.get("operator") not in NO_VALUE_OPERATORS or (
            node.get("field") == "event" and node.get("operator") == "count_at_least"
        )
        node["key_choices"] = field.choices() if field.choices and "key" in field.needs else []
        node["value_choices"] = field.choices() if field.choices and "key" not in field.needs else []
    return node


def builder_context(*, tree: dict) -> dict:
    fields = segment_fields()
    return {
        "tree": _decorate(with_paths(tree), fields),
        "field_groups": field_catalogue(),
        "fields_by_name": fields,
        "operator_labels": {key: str(label) for key, label in OPERATOR_LABELS.items()},
        "no_value_operators": NO_VALUE_OPERATORS,
        "channels": Channel.choices,
        "tree_url": reverse("admin:marketing_segment_builder_tree"),
    }


def preview_context(tree: dict) -> dict:
    try:
        preview = preview_rules(rules=tree)
    except MailroomError as error:
        return {"preview_error": str(error)}
    return {"preview": preview}


class SegmentPageBase(UnfoldModelAdminViewMixin, TemplateView):
    permission_required = ("marketing.view_segment",)

    def segment(self) -> Segment | None:
        pk = self.kwargs.get("pk")
        return get_object_or_404(Segment, pk=pk) if pk else None

    def require(self, policy) -> None:
        if not policy(self.request.user):
            raise PermissionDenied


class SegmentBuilderView(SegmentPageBase):
    """Create or edit a segment: the rule tree with a live count, or static members."""

    title = gettext_lazy("Segment builder")
    template_name = "console/segments/builder.html"

    def get_context_data(self, **kwargs) -> dict:
        segment = self.segment()
        tree = kwargs.pop("tree", None) or (segment.rules if segment else {"type": "group", "op": "and", "rules": []})
        form = kwargs.pop("form", None) or SegmentForm(
            initial={"name": segment.name, "description": segment.description, "kind": segment.kind} if segment else None
        )
        context = super().get_context_data(**kwargs)
        context.update(builder_context(tree=tree), form=form, segment=segment)
        if segment is None or segment.kind == Segment.Kind.DYNAMIC:
            context.update(preview_context(tree))
        else:
            context["members"] = segment.members.select_related("contact").order_by("-added_at", "-id")[:50]
        return context

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        segment = self.segment()
        self.require(policies.can_edit_segments if segment else policies.can_create_segments)
        form = SegmentForm(request.POST)
        tree = tree_from_form(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form, tree=tree))
        data = form.cleaned_data
        is_static = (segment.kind if segment else data["kind"]) == Segment.Kind.STATIC
        try:
            if segment is None:
                segment = create_segment(
                    name=data["name"],
                    description=data["description"],
                    kind=data["kind"],
                    rules=None if is_static else tree,
                    actor=request.user,
                )
            else:
                segment = update_segment(
                    segment=segment,
                    name=data["name"],
                    description=data["description"],
                    rules=None if is_static else tree,
                    actor=request.user,
                )
            if not is_static and "refresh" in request.POST:
                segment = refresh_segment(segment=segment, actor=request.user)
        except MailroomError as error:
            messages.error(request, str(error))
            return self.render_to_response(self.get_context_data(form=form, tree=tree))
        messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        return redirect("admin:marketing_segment_builder", pk=segment.pk)


class SegmentPreviewView(SegmentPageBase):
    """HTMX: the live count and sample for the posted tree."""

    template_name = "console/segments/builder.html#preview"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return TemplateResponse(request, self.template_name, preview_context(tree_from_form(request.POST)))


class SegmentTreeView(SegmentPageBase):
    """HTMX: apply a structural edit (add/remove a rule or group, change a field) and
    render the tree again, with the preview swapped out of band."""

    template_name = "console/segments/tree_response.html"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        tree = apply_edit(tree_from_form(request.POST), request.POST.get("edit", ""))
        return TemplateResponse(request, self.template_name, {**builder_context(tree=tree), **preview_context(tree)})


class SegmentOperationView(SegmentPageBase):
    """POST-only operations from the builder: refresh, duplicate, add/remove members."""

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return redirect("admin:marketing_segment_builder", pk=self.kwargs["pk"])

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        segment = self.segment()
        operation = self.kwargs["operation"]
        try:
            if operation == "refresh":
                self.require(policies.can_refresh_segments)
                segment = refresh_segment(segment=segment, actor=request.user)
                messages.success(request, _("Refreshed: %(count)s members.") % {"count": segment.member_count})
            elif operation == "duplicate":
                self.require(policies.can_create_segments)
                segment = duplicate_segment(segment=segment, actor=request.user)
                messages.success(request, _("Duplicated as “%(name)s”.") % {"name": segment.name})
            elif operation == "add-members":
                self.require(policies.can_edit_segments)
                identifiers = request.POST.get("identifiers", "").replace(",", "\n").splitlines()
                added, unknown = add_static_members(segment=segment, identifiers=identifiers, actor=request.user)
                messages.success(request, _("%(count)s contacts added.") % {"count": added})
                if unknown:
                    shown = ", ".join(unknown[:20]) + ("…" if len(unknown) > 20 else "")
                    messages.warning(
                        request, _("No contact found for %(count)s entries: %(list)s") % {"count": len(unknown), "list": shown}
                    )
            elif operation == "remove-member":
                self.require(policies.can_edit_segments)
                raw = request.POST.get("contact", "")
                if not (raw.isascii() and raw.isdigit() and len(raw) < 19):  # fits a bigint, never a 500
                    raise InvalidInput(_("Choose a member to remove."))
                remove_static_members(segment=segment, contact_ids=[int(raw)], actor=request.user)
                messages.success(request, _("Member removed."))
            else:
                raise PermissionDenied
        except MailroomError as error:
            messages.error(request, str(error))
        return redirect("admin:marketing_segment_builder", pk=segment.pk)
