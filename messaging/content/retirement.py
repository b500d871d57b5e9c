"""The end of a template: delete one never sent, archive one that was.

A template is "sent" once any outbox message names one of its versions (metadata
`template_version`, or the version a fan-out message renders when it is sent). Deleting it
then would orphan that history, so it is archived instead: hidden from pickers, deactivated
(nothing new is sent with it), its versions, messages and reports kept. Unarchiving brings it
back to the pickers; activate a version to send it again.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import ProtectedError, Q, QuerySet, RestrictedError
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.audit import record_audit
from messaging.errors import NotAllowed
from messaging.metadata import DEFERRED_RENDER
from messaging.models import OutboxMessage, Template


def messages_sent_with(template: Template) -> QuerySet[OutboxMessage]:
    versions = list(template.versions.values_list("pk", flat=True))
    return OutboxMessage.objects.filter(
        Q(metadata__template_version__in=versions) | Q(**{f"metadata__{DEFERRED_RENDER}__version__in": versions})
    )


def was_sent(template: Template) -> bool:
    return messages_sent_with(template).exists()


@transaction.atomic
def delete_template(*, actor: AbstractBaseUser | None, template: Template) -> None:
    """Delete a template (one language) and its versions, when no message was ever sent with
    it and nothing else (a campaign) pins one of its versions."""
    template = Template.objects.select_for_update().get(pk=template.pk)
    if was_sent(template):
        raise NotAllowed(
            _("The template “%(name)s” has been sent: it cannot be deleted, archive it instead.") % {"name": template},
            code="template_sent",
        )
    record_audit(actor=actor, verb="deleted", target=template, changes={"key": {"before": template.key, "after": None}})
    try:
        with transaction.atomic():
            template.delete()
    except (ProtectedError, RestrictedError) as error:
        raise NotAllowed(
            _("The template “%(name)s” is still used (%(users)s): it cannot be deleted, archive it instead.")
            % {"name": template, "users": ", ".join(sorted({str(obj._meta.verbose_name) for obj in error.args[1]}))},
            code="template_in_use",
        ) from error


@transaction.atomic
def archive_template(*, actor: AbstractBaseUser | None, template: Template) -> Template:
    template = Template.objects.select_for_update().get(pk=template.pk)
    if template.archived_at is None:
        before = template.is_active
        template.archived_at, template.is_active = timezone.now(), False
        template.save(update_fields=["archived_at", "is_active"])
        record_audit(
            actor=actor,
            verb="archived",
            target=template,
            changes={"archived": {"before": False, "after": True}, "is_active": {"before": before, "after": False}},
        )
    return template


@transaction.atomic
def unarchive_template(*, actor: AbstractBaseUser | None, template: Template) -> Template:
    template = Template.objects.select_for_update().get(pk=template.pk)
    if template.archived_at is not None:
        template.archived_at = None
        template.save(update_fields=["archived_at"])
        record_audit(actor=actor, verb="unarchived", target=template, changes={"archived": {"before": True, "after": False}})
    return template
