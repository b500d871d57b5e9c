"""Contact imports from the console that run on a worker, with progress a person can follow.

A 20,000-row file imported inside the web request timed out the worker (30 s). Here the
upload only stores the file and queues the job (after commit); the worker runs the bulk
importer (messaging.importing: validate every row, then write all or exactly the good
rows in one transaction) and records progress, the errors per line and the result.
"""

import io
import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from messaging.audit import record_audit
from messaging.errors import InvalidInput
from messaging.importing import import_contacts
from messaging.models import ImportJob
from messaging.work import after_commit

logger = logging.getLogger(__name__)
MAX_STORED_ERRORS = 1000  # lines listed on the job page; the count covers them all


def check_import_size(size: int) -> None:
    """The one size rule for console imports (the form and the action both ask it)."""
    if size > settings.MAILROOM_IMPORT_MAX_BYTES:
        raise InvalidInput(
            _(
                "This file is %(size)s; the console imports files up to %(limit)s. Split it, or ask an administrator to run manage.py import_contacts."
            )
            % {"size": filesizeformat(size), "limit": filesizeformat(settings.MAILROOM_IMPORT_MAX_BYTES)},
            fields={"import_file": [_("File too large.")]},
        )


@transaction.atomic
def start_import_job(
    *, actor: AbstractBaseUser | None, file_name: str, data: bytes, mode: str = ImportJob.Mode.ALL_OR_NOTHING, encoding: str = "utf-8-sig"
) -> ImportJob:
    """Store an uploaded CSV and queue its import on the cluster (after commit)."""
    check_import_size(len(data))
    if mode not in ImportJob.Mode.values:
        raise InvalidInput(_("Unknown import mode “%(mode)s”.") % {"mode": mode}, fields={"mode": [_("Unknown mode.")]})
    if not data.strip():
        raise InvalidInput(_("The file is empty."), fields={"import_file": [_("The file is empty.")]})
    job = ImportJob.objects.create(
        created_by=actor if actor is not None and actor.is_authenticated else None,
        file_name=(file_name or "contacts.csv")[:255],
        size=len(data),
        data=data,
        mode=mode,
        encoding=encoding,
        rows_total=max(data.count(b"\n") + (not data.endswith(b"\n")) - 1, 0),  # lines after the header; exact when done
    )
    record_audit(actor=actor, verb="import queued", target=job, changes={"file": {"before": None, "after": job.file_name}})
    after_commit("messaging.tasks.run_import_job", coalesce=False, job_id=job.pk)
    return job


def run_import_job(*, job_id: int) -> ImportJob:
    """The worker's side: claim a queued job, import it, record the result. A job that is
    not queued (already run, or taken by another worker) is left as it is."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ImportJob.Status.QUEUED:
            return job
        job.status, job.started_at = ImportJob.Status.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])

    def progress(stage: str, count: int) -> None:
        if stage == "validated":  # outside the import's transaction: the page sees it at once
            ImportJob.objects.filter(pk=job.pk).update(rows_done=count)

    try:
        report = import_contacts(
            actor=job.created_by, stream=io.BytesIO(bytes(job.data)), encoding=job.encoding, mode=job.mode, progress=progress
        )
    except InvalidInput as error:  # the whole file is unreadable: encoding, header
        return _finish(job, status=ImportJob.Status.FAILED, message=str(error))
    except Exception:
        logger.exception("import job %s failed", job.pk)
        return _finish(job, status=ImportJob.Status.FAILED, message=_("The import failed unexpectedly; nothing was imported."))
    job.rows_total = job.rows_done = report.rows
    job.created, job.updated, job.subscriptions, job.bad_rows = report.created, report.updated, report.subscriptions, report.bad_rows
    job.errors = [{"line": error.line, "message": error.message} for error in report.errors[:MAX_STORED_ERRORS]]
    if report.imported:
        message = _("%(created)s contacts created, %(updated)s updated, %(subscriptions)s subscriptions.") % {
            "created": report.created,
            "updated": report.updated,
            "subscriptions": report.subscriptions,
        }
        if report.bad_rows:
            message += " " + ngettext("%(n)s bad row was left out.", "%(n)s bad rows were left out.", report.bad_rows) % {
                "n": report.bad_rows
            }
        return _finish(job, status=ImportJob.Status.DONE, message=message)
    return _finish(
        job,
        status=ImportJob.Status.REJECTED,
        message=ngettext(
            "Nothing imported: %(n)s bad row. Fix it, or import again choosing “only the good rows”.",
            "Nothing imported: %(n)s bad rows. Fix them, or import again choosing “only the good rows”.",
            report.bad_rows,
        )
        % {"n": report.bad_rows},
    )


def _finish(job: ImportJob, *, status: str, message: str) -> ImportJob:
    job.status, job.message, job.finished_at = status, message, timezone.now()
    job.data = b""  # the contacts are in the database now (or were refused): no second copy of the file
    job.save()
    return job
