"""The files an outbox message carries (messaging.attachments writes and reads them)."""

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models.delivery import OutboxMessage


class AttachmentStorage(Storage):
    """The storage MAILROOM_ATTACHMENT_STORAGE names (local files under var/attachments by
    default), looked up on each use: a field's storage is fixed when the model is defined,
    this follows the settings (a test's, a deployment's STORAGES)."""

    @property
    def target(self) -> Storage:
        return storages[settings.MAILROOM_ATTACHMENT_STORAGE]

    def open(self, name, mode="rb"):
        return self.target.open(name, mode)

    def save(self, name, content, max_length=None):
        return self.target.save(name, content, max_length=max_length)

    def generate_filename(self, filename):
        return self.target.generate_filename(filename)

    def delete(self, name):
        return self.target.delete(name)

    def exists(self, name):
        return self.target.exists(name)

    def size(self, name):
        return self.target.size(name)

    def url(self, name):
        return self.target.url(name)

    def path(self, name):
        return self.target.path(name)

    def listdir(self, path):
        return self.target.listdir(path)

    def get_modified_time(self, name):
        return self.target.get_modified_time(name)


def attachment_storage() -> Storage:
    return AttachmentStorage()


class Attachment(models.Model):
    """One file of one message. The row and its file go together: deleting the row (the
    message's deletion cascades to it, erasure deletes it) deletes the file after commit
    (messaging.wiring)."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=127)
    size = models.PositiveIntegerField(_("size (bytes)"))
    # Set for an inline part: the HTML refers to it as <img src="cid:…">.
    content_id = models.CharField(_("content id"), max_length=255, blank=True)
    file = models.FileField(_("file"), storage=attachment_storage, upload_to="%Y/%m/%d", max_length=500)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename

    @property
    def inline(self) -> bool:
        return bool(self.content_id)
