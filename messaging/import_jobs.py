"""Contact imports from the console: one path for every file, small or large.

An upload becomes an ImportJob holding the file and the person's choices (topics, legal
basis, mode). A small file is imported at once, in the request, by the same
`run_import_job` a worker runs; a large one (over MAILROOM_IMPORT_INLINE_MAX_BYTES or
MAILROOM_IMPORT_INLINE_MAX_ROWS) is queued after commit, and its page follows the
worker's progress (`job_progress`), so no web request ever imports a large file.

A worker holds a lease on the job and renews it as it goes (every 10,000 rows read and
every chunk written). A worker killed mid-file leaves the lease to run out; then the
"recover import jobs" schedule (or django-q2's own retry) runs the job again: from the
start in "all or nothing" mode (its one transaction was rolled back), after the last
written chunk in "good rows" mode (each chunk commits with the job's resume point). Rows
already written match their contacts and update them, never duplicate them. Each chunk
checks the claim it was written under, so a worker that lost its lease writes nothing
more. After MAILROOM_IMPORT_MAX_ATTEMPTS claims the job is marked failed, saying why.
"""

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from messaging.audit import record_audit
from messaging.delivery.work import after_commit
from messaging.errors import InvalidInput
from messaging.importing import ImportReport, import_contacts
from messaging.models import ImportJob, LegalBasis, Topic
from messaging.policies import can_import_contacts
from messaging.spreadsheets import escape_formula

logger = logging.getLogger(__name__)
MAX_STORED_ERRORS = 100_000  # kept for the error report; the page lists the first ones
WRITE_RATE_FLOOR = 1000  # rows per second a worker writes at least (the all-or-nothing lease)
# Files people mistake for CSV: say what they are instead of "not valid UTF-8 near line 1".
BINARY_SIGNATURES = {
    b"PK\x03\x04": "XLSX/ZIP",
    b"\xd0\xcf\x11\xe0": "XLS",
    b"%PDF": "PDF",
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"\x1f\x8b": "GZIP",
}


class LeaseLost(Exception):
    """Another worker claimed the job (this one was thought dead): stop, write nothing."""


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


def check_import_file(data: bytes) -> None:
    """Refuse, with a message a person can act on, a file that cannot be a CSV at all."""
    check_import_size(len(data))
    if not data.strip():
        raise InvalidInput(_("The file is empty."), fields={"import_file": [_("The file is empty.")]})
    kind = next((name for magic, name in BINARY_SIGNATURES.items() if data.startswith(magic)), None)
    if kind is not None:
        message = _("This is a %(kind)s file, not a CSV. Save it as “CSV UTF-8” and import that.") % {"kind": kind}
        raise InvalidInput(message, fields={"import_file": [message]})


def count_rows(data: bytes) -> int:
    """Lines after the header: the estimate shown until the worker has read the file."""
    return max(data.count(b"\n") + (not data.endswith(b"\n")) - 1, 0)


def runs_inline(data: bytes) -> bool:
    return len(data) <= settings.MAILROOM_IMPORT_INLINE_MAX_BYTES and count_rows(data) <= settings.MAILROOM_IMPORT_INLINE_MAX_ROWS


def start_import_job(
    *,
    actor: AbstractBaseUser | None,
    file_name: str,
    data: bytes,
    mode: str = ImportJob.Mode.ALL_OR_NOTHING,
    topics: Iterable[Topic] = (),
    legal_basis: str = LegalBasis.CONSENT,
    consent_confirmed: bool = False,
    encoding: str = "utf-8-sig",
    inline: bool | None = None,
) -> ImportJob:
    """Store an uploaded CSV with the person's choices, then import it: in this call for a
    small file (`inline`, decided by size when None), on the cluster after commit for a
    large one. Returns the job (finished when it ran inline)."""
    if actor is not None and not can_import_contacts(actor):
        raise PermissionDenied(_("You may not import contacts."))
    check_import_file(data)
    if mode not in ImportJob.Mode.values:
        raise InvalidInput(_("Unknown import mode “%(mode)s”.") % {"mode": mode}, fields={"mode": [_("Unknown mode.")]})
    if legal_basis not in LegalBasis.values:
        raise InvalidInput(
            _("Unknown legal basis “%(basis)s”.") % {"basis": legal_basis}, fields={"legal_basis": [_("Unknown legal basis.")]}
        )
    if legal_basis == LegalBasis.CONSENT and not consent_confirmed:
        message = _("Confirm that these contacts agreed to receive what you subscribe them to, or choose another legal basis.")
        raise InvalidInput(message, fields={"consent_confirmed": [message]})
    inline = runs_inline(data) if inline is None else inline
    with transaction.atomic():
        job = ImportJob.objects.create(
            created_by=actor if actor is not None and actor.is_authenticated else None,
            file_name=(file_name or "contacts.csv")[:255],
            size=len(data),
            data=data,
            mode=mode,
            encoding=encoding,
            legal_basis=legal_basis,
            rows_total=count_rows(data),
        )
        job.topics.set(topics)
        record_audit(
            actor=actor,
            verb="import queued",
            target=job,
            changes={
                "file": {"before": None, "after": job.file_name},
                "topics": {"before": None, "after": sorted(topic.key for topic in topics)},
                "legal_basis": {"before": None, "after": legal_basis},
            },
        )
        if not inline:
            after_commit("messaging.tasks.run_import_job", coalesce=False, job_id=job.pk)
    if inline:
        return run_import_job(job_id=job.pk)
    return job


def _lease(extra_seconds: float = 0) -> datetime:
    return timezone.now() + timedelta(seconds=settings.MAILROOM_IMPORT_LEASE_SECONDS + extra_seconds)


def _claim(job_id: int) -> tuple[ImportJob | None, bool]:
    """Take the job if it waits for a worker or its worker's lease ran out."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return None, False
        stalled = job.status == ImportJob.Status.RUNNING and job.lease_until is not None and job.lease_until < timezone.now()
        if job.status != ImportJob.Status.QUEUED and not stalled:
            return job, False
        if job.attempts >= settings.MAILROOM_IMPORT_MAX_ATTEMPTS:
            _give_up(job)
            return job, False
        job.status, job.attempts, job.lease_until = ImportJob.Status.RUNNING, job.attempts + 1, _lease()
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["status", "attempts", "lease_until", "started_at"])
        if stalled:
            logger.warning("import job %s: its worker stopped; attempt %s resumes after line %s", job.pk, job.attempts, job.lines_done)
        return job, True


def run_import_job(*, job_id: int) -> ImportJob | None:
    """Import a job's file (a worker, or the request for a small file). A job that another
    worker holds, or that has ended, is left as it is: running this twice is harmless."""
    job, claimed = _claim(job_id)
    if not claimed:
        return job
    attempt = job.attempts
    base = {name: getattr(job, name) for name in ("created", "updated", "subscriptions", "rows_written")}
    fence = ImportJob.objects.filter(pk=job.pk, attempts=attempt, status=ImportJob.Status.RUNNING)

    def progress(stage: str, count: int) -> None:
        if stage == "validated":  # outside any transaction: the page sees it at once
            changed = fence.update(rows_done=count, lease_until=_lease())
        elif stage == "writing" and job.mode == ImportJob.Mode.ALL_OR_NOTHING:  # no heartbeat shows until it commits
            changed = fence.update(lease_until=_lease(count / WRITE_RATE_FLOOR))
        else:
            return
        if not changed:
            raise LeaseLost

    def on_chunk(report: ImportReport, last_line: int) -> None:
        if not fence.select_for_update().exists():
            raise LeaseLost  # rolls this chunk back
        fence.update(
            lines_done=last_line,
            lease_until=_lease(),
            created=base["created"] + report.created,
            updated=base["updated"] + report.updated,
            subscriptions=base["subscriptions"] + report.subscriptions,
            rows_written=base["rows_written"] + report.created + report.updated,
        )

    try:
        report = import_contacts(
            actor=job.created_by,
            stream=io.BytesIO(bytes(job.data)),
            encoding=job.encoding,
            mode=job.mode,
            topics=list(job.topics.all()),
            legal_basis=job.legal_basis,
            progress=progress,
            resume_after_line=job.lines_done,
            on_chunk=on_chunk,
        )
    except LeaseLost:
        logger.warning("import job %s: attempt %s lost its lease to another worker; it stops", job.pk, attempt)
        return ImportJob.objects.get(pk=job.pk)
    except InvalidInput as error:  # the whole file is unreadable: encoding, header
        return _finish(job.pk, attempt, status=ImportJob.Status.FAILED, message=str(error))
    except Exception:
        logger.exception("import job %s failed", job.pk)
        job.refresh_from_db()
        return _finish(job.pk, attempt, status=ImportJob.Status.FAILED, message=_failure_message(job))
    totals = {
        "rows_total": report.rows,
        "rows_done": report.rows,
        "created": base["created"] + report.created,
        "updated": base["updated"] + report.updated,
        "subscriptions": base["subscriptions"] + report.subscriptions,
        "rows_written": base["rows_written"] + report.created + report.updated,
        "bad_rows": report.bad_rows,
        "errors": [
            {"line": error.line, "column": error.column, "value": error.value, "message": error.message}
            for error in report.errors[:MAX_STORED_ERRORS]
        ],
    }
    if report.imported:
        message = _("%(created)s contacts created, %(updated)s updated, %(subscriptions)s subscriptions.") % totals
        if report.bad_rows:
            message += " " + ngettext("%(n)s bad row was left out.", "%(n)s bad rows were left out.", report.bad_rows) % {
                "n": report.bad_rows
            }
        return _finish(job.pk, attempt, status=ImportJob.Status.DONE, message=message, **totals)
    message = ngettext(
        "Nothing imported: %(n)s bad row. Fix it, or import again choosing “only the good rows”.",
        "Nothing imported: %(n)s bad rows. Fix them, or import again choosing “only the good rows”.",
        report.bad_rows,
    ) % {"n": report.bad_rows}
    return _finish(job.pk, attempt, status=ImportJob.Status.REJECTED, message=message, **totals)


def _failure_message(job: ImportJob) -> str:
    if job.rows_written:
        return _(
            "The import stopped after writing %(n)s rows, which stay imported. Import the file again to finish: rows already imported are updated, not duplicated."
        ) % {"n": f"{job.rows_written:,}"}
    return _("The import failed unexpectedly; nothing was imported.")


def _finish(job_id: int, attempt: int, *, status: str, message: str, **totals) -> ImportJob:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.attempts != attempt or job.status != ImportJob.Status.RUNNING:
            return job  # another worker took over: its result stands
        for name, value in totals.items():
            setattr(job, name, value)
        job.status, job.message, job.finished_at, job.lease_until = status, message, timezone.now(), None
        job.data = b""  # the contacts are in the database now (or were refused): no second copy of the file
        job.save()
        return job


def _give_up(job: ImportJob) -> None:
    """Inside the caller's transaction, the job locked: its workers kept dying."""
    job.status, job.finished_at, job.lease_until, job.data = ImportJob.Status.FAILED, timezone.now(), None, b""
    job.message = ngettext(
        "The worker importing this file stopped %(n)s time before finishing.",
        "The worker importing this file stopped %(n)s times before finishing.",
        job.attempts,
    ) % {"n": job.attempts}
    job.message += " " + _failure_message(job)
    job.save()
    record_audit(
        actor=None, verb="import failed", target=job, changes={"status": {"before": ImportJob.Status.RUNNING, "after": job.status}}
    )


def recover_import_jobs(*, now=None) -> int:
    """The schedule's side: a job whose worker's lease ran out runs again on the cluster
    (or is marked failed after too many attempts). Returns how many were handed on."""
    now = now or timezone.now()
    handed = 0
    with transaction.atomic():
        stalled = ImportJob.objects.select_for_update(skip_locked=True).filter(status=ImportJob.Status.RUNNING, lease_until__lt=now)
        for job in stalled.order_by("pk"):
            if job.attempts >= settings.MAILROOM_IMPORT_MAX_ATTEMPTS:
                _give_up(job)
                continue
            after_commit("messaging.tasks.run_import_job", coalesce=False, job_id=job.pk)
            handed += 1
    return handed


# --- read side ---------------------------------------------------------------------------
def job_progress(job: ImportJob) -> dict:
    """What the progress page polls: rows read and written of the total, errors so far."""
    total = max(job.rows_total, job.rows_done, 1)
    finished = job.status not in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)
    if finished:
        percent = 100
    else:  # reading the file is the first 30 %, writing the rest
        percent = int(30 * min(job.rows_done / total, 1) + 70 * min(job.rows_written / max(total - job.bad_rows, 1), 1))
    return {
        "status": job.status,
        "status_label": str(job.get_status_display()),
        "finished": finished,
        "rows_total": max(job.rows_total, job.rows_done),
        "rows_done": job.rows_done,
        "rows_written": job.rows_written,
        "created": job.created,
        "updated": job.updated,
        "errors": job.bad_rows,
        "percent": percent,
        "message": job.message,
    }


def error_report_rows(job: ImportJob) -> Iterator[list]:
    """The error report as CSV rows: line, column, value, error; every cell neutralised so a
    spreadsheet shows the file's text and never runs it as a formula."""
    yield [_("line"), _("column"), _("value"), _("error")]
    for error in job.errors:
        yield [escape_formula(str(cell)) for cell in (error["line"], error.get("column", ""), error.get("value", ""), error["message"])]


def error_report_csv(job: ImportJob) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(error_report_rows(job))
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # a BOM: Excel then reads it as UTF-8
