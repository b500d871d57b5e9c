"""Contact imports run in the background: the uploaded file, its progress and its result."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models.consent import LegalBasis


class ImportJob(models.Model):
    """One uploaded CSV, imported by a worker (messaging.import_jobs). The file is kept in
    the database until the job ends, so any worker of any host can read it."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting for a worker")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Imported")
        REJECTED = "rejected", _("Nothing imported: bad rows")
        FAILED = "failed", _("Failed")

    class Mode(models.TextChoices):
        ALL_OR_NOTHING = "all", _("All or nothing: any bad row imports nothing")
        GOOD_ROWS = "good", _("Only the good rows: report the bad ones")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    file_name = models.CharField(_("file"), max_length=255)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    data = models.BinaryField(_("file contents"), default=b"", editable=False)
    mode = models.CharField(_("mode"), max_length=8, choices=Mode.choices, default=Mode.ALL_OR_NOTHING)
    encoding = models.CharField(_("encoding"), max_length=40, default="utf-8-sig")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    rows_total = models.PositiveIntegerField(_("rows in the file"), default=0)
    rows_done = models.PositiveIntegerField(_("rows read"), default=0)
    created = models.PositiveIntegerField(_("contacts created"), default=0)
    updated = models.PositiveIntegerField(_("contacts updated"), default=0)
    subscriptions = models.PositiveIntegerField(_("subscriptions"), default=0)
    bad_rows = models.PositiveIntegerField(_("bad rows"), default=0)
    errors = models.JSONField(_("errors per line"), default=list, blank=True)
    message = models.TextField(_("result"), blank=True)
    # What the person chose for every imported contact (besides the file's topics column).
    topics = models.ManyToManyField("messaging.Topic", blank=True, related_name="+", verbose_name=_("topics"))
    legal_basis = models.CharField(_("legal basis"), max_length=24, choices=LegalBasis.choices, default=LegalBasis.CONSENT)
    # The worker's claim: renewed as it goes; a claim that runs out means the worker died,
    # and messaging.import_jobs.recover_import_jobs runs the job again (resuming after
    # lines_done in "good rows" mode, whose chunks commit one by one).
    lease_until = models.DateTimeField(_("worker's lease until"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    lines_done = models.PositiveIntegerField(_("last file line written"), default=0)
    rows_written = models.PositiveIntegerField(_("rows written"), default=0)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"
