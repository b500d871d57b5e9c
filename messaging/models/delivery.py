"""The delivery engine's tables: providers, the outbox (the real queue), attempts, events,
tracked links, the sandbox inbox and inbound messages."""

from django.core.validators import MaxValueValidator
from django.db import models, transaction
from django.db.models.base import ModelState
from django.db.models.functions import Coalesce
from django.db.models.signals import post_init, pre_init
from django.utils.translation import gettext_lazy as _

from messaging.models.consent import Topic
from messaging.models.contacts import Channel, Contact


class Provider(models.Model):
    """Something that can deliver messages of one channel. Lower `priority` is tried first;
    when one keeps failing it is rested (`resting_until`) and the next one takes over."""

    class Kind(models.TextChoices):
        SANDBOX = "sandbox", _("Sandbox (stores messages, sends nothing)")
        SMTP = "smtp", _("SMTP server")
        ANYMAIL = "anymail", _("Email service (django-anymail)")
        HTTP = "http", _("HTTP API (Twilio-style SMS/WhatsApp, push)")

    name = models.CharField(_("name"), max_length=100, unique=True)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    priority = models.PositiveSmallIntegerField(_("priority"), default=10, help_text=_("Lower is tried first."))
    is_active = models.BooleanField(_("active"), default=True)
    config = models.JSONField(
        _("configuration"),
        default=dict,
        blank=True,
        help_text=_('Host, port, URL, sender… Secrets are named by setting, e.g. {"password_setting": "SMTP_PASSWORD"}.'),
    )
    # Credentials typed in the console (Settings → Email delivery): a password or API key,
    # sealed with a key derived from SECRET_KEY (messaging.secrets.seal_credentials), never
    # shown back. A config that names a secret (MAILROOM_SECRET_<NAME>) wins over them.
    sealed_credentials = models.TextField(blank=True, default="", db_default="", editable=False)
    rate_per_second = models.PositiveIntegerField(_("max per second"), null=True, blank=True)
    rate_per_hour = models.PositiveIntegerField(_("max per hour"), null=True, blank=True)
    # Token buckets, shared by every worker through this row (locked while taking tokens).
    second_tokens = models.FloatField(default=0)
    hour_tokens = models.FloatField(default=0)
    tokens_at = models.DateTimeField(null=True, blank=True)
    # Health
    consecutive_failures = models.PositiveIntegerField(_("failures in a row"), default=0)
    resting_until = models.DateTimeField(_("resting until"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_failure_at = models.DateTimeField(_("last failure"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    sent_count = models.PositiveBigIntegerField(_("sent"), default=0)
    failed_count = models.PositiveBigIntegerField(_("failed"), default=0)
    # Temporary failures whose message went back to the queue for another try (a counter,
    # like the two above: /metrics reads it as mailroom_provider_retries_total).
    retried_count = models.PositiveBigIntegerField(_("retried"), default=0, db_default=0)

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        ordering = ["channel", "priority", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"


class OutboxQuerySet(models.QuerySet):
    """`OutboxMessage.objects`: the send path's two ways of reading messages."""

    def with_bodies(self) -> "OutboxQuerySet":
        """Each message's text and HTML read in the same query (a join), instead of one
        query per message on first access."""
        empty = models.Value("")
        return self.annotate(
            body_text=Coalesce("body__text", empty, output_field=models.TextField()),
            body_html=Coalesce("body__html", empty, output_field=models.TextField()),
        )

    def load(self) -> list["OutboxMessage"]:
        """The messages (whole rows, plus annotations such as with_bodies'), as the ORM's
        iterator would give them, with fewer calls per row: the send path loads 500 a
        batch. Django's own converters still turn each value into what the field holds,
        except where the answer is known: NULL stays None, a value already a bool stays
        itself (SQLite's registered "bool" converter made it), and "{}" (most messages'
        headers and metadata) is a new empty dict rather than a trip through json.loads.
        A claim of 500 costs about 5 µs a message less (medians of paired runs in one
        process: 42.7 → 37.9 and 46.8 → 41.6). A queryset that selects related rows,
        defers fields or yields something else goes through the ORM's own iterator."""
        query = self.query
        if self._iterable_class is not models.query.ModelIterable or query.deferred_loading[0] or query.select_related:
            return list(self)
        compiler = query.get_compiler(self.db)
        chunks = compiler.execute_sql(chunked_fetch=False)  # a list of row lists; empty when nothing matches
        select, fields = compiler.select, compiler.klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        names = [column.target.attname for column, _sql, _alias in select[start:end]]
        annotations = list(compiler.annotation_col_map.items())
        steps = [
            (position, tuple(functions), expression, isinstance(getattr(expression, "output_field", None), models.JSONField))
            for position, (functions, expression) in compiler.get_converters([column for column, _sql, _alias in select]).items()
        ]
        connection, db, loaded, model = compiler.connection, self.db, [], self.model
        for chunk in chunks:
            for row in chunk:
                values = list(row)
                for position, functions, expression, is_json in steps:
                    value = values[position]
                    if value is None or value.__class__ is bool:
                        continue
                    if is_json and value == "{}":
                        values[position] = {}
                        continue
                    for function in functions:
                        value = function(value, expression, connection)
                    values[position] = value
                message = model.from_db(db, names, values[start:end])
                for name, position in annotations:
                    setattr(message, name, values[position])
                loaded.append(message)
        return loaded


class OutboxManager(models.Manager.from_queryset(OutboxQuerySet)):
    def bulk_create(self, objs, batch_size=None, **kwargs):
        """Messages and, in the same transaction, the bodies they were given."""
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, batch_size=batch_size, **kwargs)
            bodies = [body for message in created if message.pk is not None and (body := message.changed_body(adding=True))]
            OutboxBody.objects.bulk_create(bodies, batch_size=batch_size)
        return created


BODY_FIELDS = frozenset({"body_text", "body_html"})


class BodyPart:
    """`OutboxMessage.body_text` / `body_html`: read from the message's OutboxBody on first
    access, then a plain attribute (a non-data descriptor: the instance's own value wins,
    so the send path reads a string, not a property, each of the several times it looks)."""

    def __init__(self, index: int):
        self.index = index

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = instance.stored_body()[self.index]
        return value


class OutboxMessage(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        SUPPRESSED = "suppressed", _("Suppressed")

    class Priority(models.IntegerChoices):
        TRANSACTIONAL = 0, _("Transactional")
        HIGH = 3, _("High")
        NORMAL = 5, _("Normal")
        BULK = 8, _("Bulk")

    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    # No database constraint: checking it locked the contact row for every message written,
    # a tenth of a million-message fan-out, and contacts are never deleted (soft delete and
    # erasure keep the row); an ORM delete would still null the link.
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_constraint=False)
    to_address = models.CharField(_("to"), max_length=512)
    from_address = models.CharField(_("from"), max_length=254, blank=True)
    # No database constraint either (nor on provider below): their checks ran for every
    # inserted row at commit (3–6 µs a row for the topic, ~1 µs for the provider even when it
    # is empty), several seconds of a million-message fan-out. Topics and providers are deleted
    # through the ORM, which nulls the link (SET_NULL) itself.
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", db_constraint=False)
    is_marketing = models.BooleanField(_("marketing"), default=False)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    # The text and HTML bodies live in OutboxBody (`body_text` and `body_html` below read
    # and write them): this row is written twice by every send (claim, outcome), and with
    # its bodies in it each write rewrote a whole 3 KB record and dirtied a page a message.
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    # A message carrying a secret (reset/verification link, gift-card code): its body holds
    # markers, the values are sealed here until it is sent or gives up (messaging.secrets).
    # db_default: set-based inserts (campaign fan-out) need not name them.
    is_sensitive = models.BooleanField(_("contains a secret"), default=False, db_default=False)
    sealed_secrets = models.TextField(blank=True, default="", db_default="", editable=False)
    # Set when the message carries files (messaging.models.attachments): only those are
    # prefetched in a send batch, so a message without any costs no query.
    has_attachments = models.BooleanField(_("has attachments"), default=False, db_default=False, editable=False)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveSmallIntegerField(_("max attempts"), default=4)
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"))  # claimed through outbox_queued
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    dedup_key = models.CharField(_("dedup key"), max_length=200, null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=200, blank=True)
    # Indexed only where set (outbox_provider): a queued message has none yet.
    provider = models.ForeignKey(
        Provider,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        verbose_name=_("provider"),
        db_constraint=False,
        db_index=False,
    )
    provider_message_id = models.CharField(_("provider message id"), max_length=200, blank=True)
    error = models.TextField(_("error"), blank=True)
    # Indexed as the first column of outbox_created_channel_status (and outbox_retention): a
    # one-column index too would be one more index written by every insert of a fan-out.
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    # Set when the retention job (messaging.delivery.retention) emptied the body, headers and
    # files of this old message; the row, its subject and status stay for the figures.
    body_pruned_at = models.DateTimeField(_("content deleted"), null=True, blank=True, editable=False)

    # Not a column: enqueue_message sets it on the message it returns for a repeated dedup key.
    deduplicated: bool = False

    body_text = BodyPart(0)
    body_html = BodyPart(1)

    objects = OutboxManager()

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox")
        ordering = ["-id"]
        # Declared here rather than with unique=/db_index= on the fields: on PostgreSQL those
        # add a second, LIKE-only index to each text column, written on every insert and
        # never read (keys are only ever looked up whole).
        constraints = [models.UniqueConstraint(fields=["dedup_key"], name="outbox_dedup_key")]
        indexes = [
            # Partial indexes hold only the rows their queries look for, so a new (queued)
            # message, e.g. each of a fan-out's million, writes none of them but outbox_queued:
            # a provider's id and the provider exist once it was sent (webhooks, replies and the
            # console look up a given, non-empty id; provider deletion nulls a given provider),
            # and a lease is only recovered from sending messages.
            models.Index(fields=["provider_message_id"], name="outbox_provider_msg_id", condition=~models.Q(provider_message_id="")),
            models.Index(fields=["provider"], name="outbox_provider", condition=models.Q(provider__isnull=False)),
            # What the claim reads: queued messages by priority, then by when they are due. One
            # range scan per priority (messaging.delivery.sending._queued_ids) however long the
            # backlog, and only queued rows: a message leaves it when claimed.
            models.Index(fields=["priority", "next_attempt_at"], name="outbox_queued", condition=models.Q(status="queued")),
            models.Index(fields=["lease_until"], name="outbox_sending_leases", condition=models.Q(status="sending")),
            models.Index(fields=["channel", "status"], name="outbox_channel_status"),
            # The retention job's queue: only finished messages whose body is still there. A
            # message enters it once (when it is sent or gives up: status is indexed, so that
            # update writes every index anyway) and leaves it when pruned, so a nightly batch
            # reads the oldest unpruned rows without walking years of pruned ones.
            models.Index(
                fields=["created_at", "id"],
                name="outbox_retention",
                condition=models.Q(status__in=["sent", "failed", "cancelled", "suppressed"], body_pruned_at__isnull=True),
            ),
            # The console's search: an address, whole or its beginning (LIKE 'x%' on PostgreSQL).
            models.Index(fields=["to_address"], name="outbox_to_address", opclasses=["varchar_pattern_ops"]),
            # "messages by status and channel" over a period (analytics, the stats API): the
            # period's rows are read from this index alone, without visiting the table
            models.Index(fields=["created_at", "channel", "status"], name="outbox_created_channel_status"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_channel_display()} → {self.to_address}"

    def __init__(self, *args, body_text: str | None = None, body_html: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if body_text is not None:
            self.body_text = body_text
        if body_html is not None:
            self.body_html = body_html

    def save(self, *, update_fields=None, **kwargs) -> None:
        """The message and, in the same transaction, its body when it changed. With
        `update_fields`, the body only when "body_text" or "body_html" is named (as Django
        saves only the fields named): a status update never reads the body to compare it."""
        adding = self._state.adding
        with_body = update_fields is None or not BODY_FIELDS.isdisjoint(update_fields)
        if update_fields is not None:
            update_fields = [name for name in update_fields if name not in BODY_FIELDS]
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):
            super().save(update_fields=update_fields, **kwargs)
            body = self.changed_body(adding=adding) if with_body else None
            if body is not None:
                body.save(force_insert=adding)

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        """Django's, and the bodies are read again on next access (they may be named in `fields`)."""
        others = None if fields is None else [name for name in fields if name not in BODY_FIELDS]
        if others is None or others:
            super().refresh_from_db(using=using, fields=others, from_queryset=from_queryset)
        if fields is None or not BODY_FIELDS.isdisjoint(fields):
            for name in ("body_text", "body_html", "_stored_body"):
                self.__dict__.pop(name, None)

    # --- the bodies (OutboxBody) -----------------------------------------------------------
    # `body_text` and `body_html` (BodyPart) read like fields and are set like plain
    # attributes: save() and the manager's bulk_create() store them when they changed. No
    # OutboxBody row means both are empty (a fan-out's messages before they are rendered).
    # The send path and other lists load them in the same query: `.with_bodies()` on a queryset.
    def stored_body(self) -> tuple[str, str]:
        """(text, HTML) as stored, read once (one query unless loaded with the message)."""
        stored = self.__dict__.get("_stored_body")
        if stored is None:
            if self.pk is None or self._state.adding:
                stored = ("", "")
            else:
                row = OutboxBody.objects.filter(message_id=self.pk).values_list("text", "html").first()
                stored = row or ("", "")
            self.__dict__["_stored_body"] = stored
        return stored

    def changed_body(self, *, adding: bool) -> "OutboxBody | None":
        """The body row to write for this message, or None when its bodies did not change
        (a new message's empty bodies need no row)."""
        attributes = self.__dict__
        if "body_text" not in attributes and "body_html" not in attributes:
            return None
        stored = ("", "") if adding else self.stored_body()
        current = (attributes.get("body_text", stored[0]), attributes.get("body_html", stored[1]))
        if current == stored:
            return None
        attributes["_stored_body"] = current
        return OutboxBody(message_id=self.pk, text=current[0], html=current[1])

    @classmethod
    def from_db(cls, db, field_names, values, *, fetch_mode=None):
        """A whole row as an instance without `Model.__init__`'s setattr per field (and the
        foreign keys' descriptors, which only matter for an instance that has cached
        related objects, and a new one has none). The send path loads 500 rows a batch:
        this halved their instantiation. Django's own whenever a field is deferred or
        something listens to the init signals."""
        attnames = cls.__dict__.get("_attnames")
        if attnames is None:
            attnames = cls._attnames = tuple(field.attname for field in cls._meta.concrete_fields)
        if len(values) != len(attnames) or pre_init.has_listeners(cls) or post_init.has_listeners(cls):
            return super().from_db(db, field_names, values, fetch_mode=fetch_mode)
        new = cls.__new__(cls)
        new.__dict__.update(zip(attnames, values, strict=True))
        state = new._state = ModelState()
        state.adding, state.db = False, db
        if fetch_mode is not None:
            state.fetch_mode = fetch_mode
        return new


class OutboxBody(models.Model):
    """The text and HTML of an outbox message (OutboxMessage.body_text / body_html). Apart
    from the status row so that sending rewrites a narrow row twice, not the bodies: in the
    SQLite send path that was a page written to the WAL per message, per write. Written once
    (at enqueue, or when a fan-out message is rendered), read when sent or shown, deleted by
    retention and erasure. No database constraint, like the outbox's other links: the ORM
    deletes it with its message."""

    message = models.OneToOneField(
        OutboxMessage, primary_key=True, on_delete=models.CASCADE, related_name="body", db_constraint=False, verbose_name=_("message")
    )
    text = models.TextField(_("text"), blank=True)
    html = models.TextField(_("HTML"), blank=True)

    class Meta:
        verbose_name = _("message body")
        verbose_name_plural = _("message bodies")

    def __str__(self) -> str:
        return f"#{self.message_id}"


class DeliveryAttempt(models.Model):
    """Append-only: one row per try of one message through one provider."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        TRANSIENT = "transient", _("Temporary failure")
        PERMANENT = "permanent", _("Permanent failure")

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="delivery_attempts")
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("provider"))
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    response = models.TextField(_("response"), blank=True)
    duration_ms = models.FloatField(_("duration (ms)"), default=0)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.response[:60]}"


class DeliveryEvent(models.Model):
    class Kind(models.TextChoices):
        DELIVERED = "delivered", _("Delivered")
        OPENED = "opened", _("Opened")
        CLICKED = "clicked", _("Clicked")
        BOUNCED = "bounced", _("Bounced")
        COMPLAINED = "complained", _("Complained")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        REPLIED = "replied", _("Replied")
        FAILED = "failed", _("Failed")

    message = models.ForeignKey(OutboxMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    external_id = models.CharField(_("event id"), max_length=200, unique=True, null=True, blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    # Opens and clicks made by machines (Apple Mail Privacy Protection, image proxies,
    # security scanners, prefetch): kept as proof of delivery, left out of engagement.
    is_automated = models.BooleanField(_("automated"), default=False, db_default=False)
    occurred_at = models.DateTimeField(_("when"), db_index=True)

    class Meta:
        verbose_name = _("delivery event")
        verbose_name_plural = _("delivery events")
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.message_id}"


class TrackedLink(models.Model):
    """The only URLs a click may redirect to."""

    url = models.URLField(_("URL"), max_length=2000)
    url_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("tracked link")
        verbose_name_plural = _("tracked links")

    def __str__(self) -> str:
        return self.url


class SandboxMessage(models.Model):
    """What the sandbox provider 'sent': visible in the console's sandbox inbox."""

    message = models.ForeignKey(OutboxMessage, null=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.ForeignKey(Provider, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("provider"))
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    to_address = models.CharField(_("to"), max_length=512)
    from_address = models.CharField(_("from"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    body_text = models.TextField(_("text"), blank=True)
    body_html = models.TextField(_("HTML"), blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    # The email as it went on the wire (messaging.providers.email.mime.compose), secrets redacted.
    source = models.TextField(_("source"), blank=True, default="")
    # Stored redacted; the console shows the hidden notice instead of its body.
    is_sensitive = models.BooleanField(_("contains a secret"), default=False, db_default=False)
    created_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("sandbox message")
        verbose_name_plural = _("sandbox inbox")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.to_address}: {self.subject or ('' if self.is_sensitive else self.body_text[:40])}"


class Inbox(models.Model):
    """An address we receive on; each inbound message goes to `handler` (a dotted path).
    An email inbox with an IMAP host is read by the cluster every minute
    (messaging.mailbox.poll_email_inbox); the others receive through webhooks."""

    class Security(models.TextChoices):
        SSL = "ssl", _("TLS from the start (IMAPS, port 993)")
        STARTTLS = "starttls", _("STARTTLS (port 143)")
        NONE = "none", _("None: loopback or an allowed host only (MAILROOM_IMAP_PLAINTEXT_HOSTS)")

    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    address = models.CharField(_("address"), max_length=254)
    handler = models.CharField(_("handler"), max_length=200, default="messaging.delivery.inbound.handle_stop_words")
    is_active = models.BooleanField(_("active"), default=True)
    # IMAP (email inboxes): where the mailbox is. Admin only, like a provider's host: these
    # decide which server Mailroom logs in to with the named secret.
    imap_host = models.CharField(_("IMAP host"), max_length=253, blank=True, help_text=_("Empty: not read over IMAP."))
    imap_port = models.PositiveIntegerField(
        _("IMAP port"), null=True, blank=True, validators=[MaxValueValidator(65535)], help_text=_("Empty: 993 with TLS, 143 otherwise.")
    )
    imap_security = models.CharField(_("IMAP security"), max_length=16, choices=Security.choices, default=Security.SSL)
    imap_username = models.CharField(_("IMAP username"), max_length=254, blank=True)
    imap_password_secret = models.CharField(
        _("IMAP password secret"),
        max_length=100,
        blank=True,
        help_text=_("The name of a secret, e.g. IMAP_REPLIES: its value is the environment variable MAILROOM_SECRET_IMAP_REPLIES."),
    )
    imap_folder = models.CharField(_("IMAP folder"), max_length=200, default="INBOX")
    # Sync state: each mail is read once. UIDs only mean something within one UIDVALIDITY;
    # when the server changes it, the folder is read again (external ids keep that harmless).
    imap_uidvalidity = models.PositiveBigIntegerField(_("UIDVALIDITY"), null=True, blank=True, editable=False)
    imap_last_uid = models.PositiveBigIntegerField(_("last UID read"), default=0, editable=False)
    imap_polled_at = models.DateTimeField(_("last checked"), null=True, blank=True, editable=False)
    imap_error = models.TextField(_("last error"), blank=True, editable=False)

    class Meta:
        verbose_name = _("inbox")
        verbose_name_plural = _("inboxes")
        constraints = [models.UniqueConstraint(fields=["channel", "address"], name="one_inbox_per_address")]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"


class InboxMessage(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        HANDLED = "handled", _("Handled")
        FAILED = "failed", _("Handler failed")

    inbox = models.ForeignKey(Inbox, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    from_address = models.CharField(_("from"), max_length=254)
    to_address = models.CharField(_("to"), max_length=254)
    body = models.TextField(_("body"), blank=True)
    external_id = models.CharField(_("provider id"), max_length=200, unique=True, null=True, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound")
    # The message of ours this one answers (an email's In-Reply-To/References): the reply
    # counts on it rather than on the contact's last message.
    in_reply_to = models.ForeignKey(
        OutboxMessage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replies",
        db_constraint=False,
        verbose_name=_("in reply to"),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    result = models.TextField(_("result"), blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.body[:40]}"
