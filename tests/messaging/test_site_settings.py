"""Settings → Sending: the accessor's precedence (environment > Settings > default), the
page's validation and roles, email delivery against real SMTP servers on loopback, and
the credential that never comes back out."""

import json
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.urls import reverse

from messaging import site
from messaging.delivery.outbox import enqueue_message
from messaging.email_setup import MANAGED_NAME, configure_email_delivery, current_email_setup, send_delivery_test
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import AuditEntry, OutboxMessage, Provider, SandboxMessage, SiteSettings
from messaging.providers.base import secret
from messaging.providers.email.mime import compose
from tests.support.smtp_sink import RecordingHandler, SMTPSink, free_port

PASSWORD = "s3cret-Pa55word-xyz"
URL = "/admin/settings/sending/"
POSTAL = "Acme SAS, 5 rue du Port, 13002 Marseille"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


# --- the accessor ------------------------------------------------------------------------------
def test_defaults_apply_when_nothing_is_set(db):
    current = site.current()
    assert current.default_from == "Mailroom <hello@mailroom.test>"
    assert current.base_url == "http://127.0.0.1:8000" and current.site_url == "http://127.0.0.1:8000"
    assert current.postal_address == "" and current.reply_to == "" and current.default_provider == "sandbox"
    assert current.overridden == {}


def test_the_settings_row_wins_over_the_default_and_shows_at_once(db, admin_user):
    site.current()  # cached before the change
    site.update_site_settings(
        actor=admin_user,
        values={
            "sender_name": "Acme, Inc.",
            "from_email": "news@acme.test",
            "postal_address": POSTAL,
            "base_url": "https://mail.acme.test",
        },
    )
    current = site.current()
    assert current.default_from == '"Acme, Inc." <news@acme.test>'
    assert current.postal_address == POSTAL
    assert current.site_url == "https://mail.acme.test"  # falls back to the base URL
    assert current.link("/u/x/") == "https://mail.acme.test/u/x/"


def test_an_environment_variable_wins_over_the_settings_row(db, admin_user, settings):
    site.update_site_settings(actor=admin_user, values={"postal_address": POSTAL, "sender_name": "Acme", "from_email": "a@acme.test"})
    settings.MAILROOM_SENDER_ADDRESS = "From the environment, 1 rue X"
    settings.MAILROOM_DEFAULT_FROM = "Env Sender <env@example.org>"
    current = site.current()
    assert current.postal_address == "From the environment, 1 rue X"
    assert current.default_from == "Env Sender <env@example.org>"
    assert current.overridden == {
        "postal_address": "MAILROOM_SENDER_ADDRESS",
        "sender_name": "MAILROOM_DEFAULT_FROM",
        "from_email": "MAILROOM_DEFAULT_FROM",
    }
    # and the stored value is still there for when the variable goes
    settings.MAILROOM_SENDER_ADDRESS = ""
    assert site.current().postal_address == POSTAL


def test_the_site_is_built_once_and_again_when_its_values_change(db, admin_user, settings):
    # given the site read once (a send path asks for it per header and footer)
    first = site.current()
    # then reading it again reuses it while nothing changed
    assert site.current() is first
    # when an environment value changes (settings announce it), the next read has it
    settings.MAILROOM_BASE_URL = "https://mail.example.com"
    changed = site.current()
    assert changed is not first and changed.base_url == "https://mail.example.com"
    assert changed.overridden["base_url"] == "MAILROOM_BASE_URL"
    # and when the Settings page is saved, the next read has that too
    site.update_site_settings(actor=admin_user, values={"postal_address": POSTAL})
    assert site.current().postal_address == POSTAL and site.current().base_url == "https://mail.example.com"


def test_marketing_email_goes_out_with_the_settings_postal_address_and_reply_to(db, admin_user, newsletter):
    # given no postal address: marketing email is refused, saying where to set it
    with pytest.raises(NotAllowed, match="Settings → Sending"):
        enqueue_message(channel="email", to="ada@example.com", subject="Hi", text="Hello", topic=newsletter)
    # when the Admin fills it in (and a reply-to)
    site.update_site_settings(actor=admin_user, values={"postal_address": POSTAL, "reply_to": "replies@acme.test"})
    message = enqueue_message(channel="email", to="ada@example.com", subject="Hi", text="Hello", topic=newsletter)
    wire = compose(message)
    # then it goes out with both
    assert POSTAL in wire.text and wire.headers["Reply-To"] == "replies@acme.test"


# --- bad input: a clear error, nothing saved ------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"from_email": "not-an-address"}, "from_email", "not a valid email address"),
        ({"reply_to": "x@"}, "reply_to", "not a valid email address"),
        ({"base_url": "ftp://files.example"}, "base_url", "http:// or https://"),
        ({"site_url": "javascript:alert(1)"}, "site_url", "http:// or https://"),
        ({"sender_name": "Evil\r\nBcc: all@example.com"}, "sender_name", "control characters"),
        ({"default_provider": "smtp"}, "default_provider", "sandbox or none"),
        ({"postal_address": "x" * 501}, "postal_address", "At most 500"),
    ],
)
def test_a_bad_value_is_refused_with_its_field_and_nothing_is_saved(db, admin_user, values, field, text):
    site.update_site_settings(actor=admin_user, values={"postal_address": POSTAL})
    before = AuditEntry.objects.count()
    with pytest.raises(InvalidInput) as refused:
        site.update_site_settings(actor=admin_user, values={"sender_name": "Changed", "postal_address": "Changed", **values})
    assert field in refused.value.fields and text in " ".join(refused.value.fields[field])
    row = SiteSettings.objects.get()
    assert row.postal_address == POSTAL and row.sender_name == ""  # not half-saved
    assert AuditEntry.objects.count() == before


def test_a_change_is_audited_with_before_and_after(db, admin_user):
    site.update_site_settings(actor=admin_user, values={"site_name": "Acme"})
    entry = AuditEntry.objects.get(verb="settings_changed")
    assert entry.actor == admin_user and entry.changes == {"site_name": {"before": "", "after": "Acme"}}


# --- the page and its roles ----------------------------------------------------------------------
def test_admin_saves_the_page_and_environment_fields_are_read_only_with_their_variable(client, admin_user, settings):
    settings.MAILROOM_BASE_URL = "https://env.example.org"
    client.force_login(admin_user)
    page = client.get(URL)
    html = page.content.decode()
    assert page.status_code == 200 and "Set by the environment variable MAILROOM_BASE_URL" in html
    response = client.post(
        URL,
        {
            "section": "sending",
            "sender_name": "Acme",
            "from_email": "hi@acme.test",
            "postal_address": POSTAL,
            "base_url": "https://attacker.example",  # a disabled field: ignored
            "default_provider": "sandbox",
        },
    )
    assert response.status_code == 302
    row = SiteSettings.objects.get()
    assert row.postal_address == POSTAL and row.base_url == ""
    assert site.current().base_url == "https://env.example.org"


def test_the_page_shows_each_bad_field_and_keeps_the_saved_values(client, admin_user):
    client.force_login(admin_user)
    response = client.post(URL, {"section": "sending", "from_email": "nope", "postal_address": POSTAL, "default_provider": "sandbox"})
    assert response.status_code == 400 and "“nope” is not a valid email address." in response.content.decode()
    assert not SiteSettings.objects.filter(postal_address=POSTAL).exists()
    response = client.post(URL, {"section": "delivery", "mode": "smtp", "host": "127.0.0.1", "port": "70000", "security": "none"})
    assert response.status_code == 400 and "less than or equal to 65535" in response.content.decode()
    assert current_email_setup().mode == "sandbox"


@pytest.mark.parametrize("role", ["marketer", "ops", "support", "approver"])
def test_other_roles_can_neither_read_nor_change_the_settings(client, request, role, admin_user):
    user = request.getfixturevalue(role)
    client.force_login(user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"section": "sending", "postal_address": "Mine", "default_provider": "sandbox"}).status_code == 403
    assert client.post(URL, {"section": "delivery", "mode": "smtp", "host": "evil.example", "security": "none"}).status_code == 403
    assert client.post(URL, {"section": "test", "to": "me@example.com"}).status_code == 403
    assert URL not in client.get(reverse("admin:index")).content.decode()  # not in the sidebar
    assert not SiteSettings.objects.exclude(postal_address="").exists() and not Provider.objects.filter(name=MANAGED_NAME).exists()
    client.force_login(admin_user)
    assert URL in client.get(reverse("admin:index")).content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    for response in (client.get(URL), client.post(URL, {"section": "sending", "postal_address": "x"})):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not SiteSettings.objects.exists()


# --- email delivery against real servers ------------------------------------------------------------
class AuthSink:
    """An SMTP server on loopback that wants a login (AUTH PLAIN/LOGIN without TLS: loopback only)."""

    def __init__(self, password: str = PASSWORD):
        self.port = free_port()
        self.handler = RecordingHandler()

        def authenticator(server, session, envelope, mechanism, auth_data):
            accepted = auth_data.login == b"mailer" and auth_data.password == password.encode()
            return AuthResult(success=accepted, handled=False)  # a refusal answers 535

        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, authenticator=authenticator, auth_require_tls=False
        )

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def test_the_sandbox_test_send_shows_where_it_went(db, admin_user):
    answer = send_delivery_test(actor=admin_user, to="qa@example.com")
    assert answer.ok and answer.answer == "stored in the sandbox"
    assert SandboxMessage.objects.get(to_address="qa@example.com").from_address in ("", "Mailroom <hello@mailroom.test>")


def test_smtp_set_up_sends_a_test_and_shows_the_servers_reply(db, admin_user):
    site.update_site_settings(actor=admin_user, values={"sender_name": "Acme", "from_email": "hi@acme.test", "reply_to": "r@acme.test"})
    with SMTPSink() as sink:
        configure_email_delivery(actor=admin_user, mode="smtp", host="127.0.0.1", port=sink.port, security="none")
        answer = send_delivery_test(actor=admin_user, to="qa@example.com")
    assert answer.ok and answer.answer == "250 Message accepted for delivery"  # the server's own words
    raw = sink.handler.messages[0].decode()
    assert "From: Acme <hi@acme.test>" in raw and "Reply-To: r@acme.test" in raw
    # and the sandbox no longer stands behind the server
    assert not Provider.objects.filter(kind="sandbox", channel="email", is_active=True).exists()


def test_an_unreachable_server_is_an_error_on_the_host_and_nothing_is_saved(db, admin_user):
    closed = free_port()
    with pytest.raises(InvalidInput) as refused:
        configure_email_delivery(actor=admin_user, mode="smtp", host="127.0.0.1", port=closed, security="none")
    assert "unreachable" in str(refused.value) and "host" in refused.value.fields
    assert current_email_setup().mode == "sandbox" and not Provider.objects.filter(name=MANAGED_NAME).exists()
    assert not AuditEntry.objects.filter(verb="email_delivery_changed").exists()


def test_a_refused_server_answer_shows_on_the_test(db, admin_user):
    with SMTPSink() as sink:
        configure_email_delivery(actor=admin_user, mode="smtp", host="127.0.0.1", port=sink.port, security="none")
        answer = send_delivery_test(actor=admin_user, to="hard-fail@example.com")
    assert not answer.ok and answer.answer == "550 5.1.1 No such user here"


def test_the_password_is_sealed_checked_kept_and_never_shown(client, db, admin_user):
    with AuthSink() as server:
        # a wrong password: the server's refusal, nothing saved
        with pytest.raises(InvalidInput, match="login refused"):
            configure_email_delivery(
                actor=admin_user, mode="smtp", host="127.0.0.1", port=server.port, security="none", username="mailer", password="wrong"
            )
        assert not Provider.objects.filter(name=MANAGED_NAME).exists()
        # the right one, through the page
        client.force_login(admin_user)
        form = {"section": "delivery", "mode": "smtp", "host": "127.0.0.1", "port": server.port, "security": "none", "username": "mailer"}
        assert client.post(URL, {**form, "password": PASSWORD}).status_code == 302
        # saved again with the password left empty: the stored one is kept (and still works)
        assert client.post(URL, form).status_code == 302
        response = client.post(URL, {"section": "test", "to": "qa@example.com"})
        assert response.status_code == 200 and "250 Message accepted for delivery" in response.content.decode()
        assert len(server.handler.messages) == 1
    provider = Provider.objects.get(name=MANAGED_NAME)
    assert PASSWORD not in json.dumps(provider.config) and PASSWORD not in provider.sealed_credentials
    # never in a page, the audit trail or its export, the provider's console page
    pages = [
        client.get(URL),
        client.get(reverse("admin:messaging_provider_change", args=[provider.pk])),
        client.get(reverse("admin:messaging_auditentry_changelist")),
    ]
    for page in pages:
        assert page.status_code == 200 and PASSWORD not in page.content.decode()
    assert PASSWORD not in json.dumps([entry.changes for entry in AuditEntry.objects.all()])
    entry = AuditEntry.objects.filter(verb="email_delivery_changed").first()
    assert entry.actor == admin_user and entry.changes["replaced"] == ["password"]


def test_an_esp_key_is_sealed_and_reaches_the_backend_options(db, admin_user):
    configure_email_delivery(actor=admin_user, mode="esp", esp="postmark", api_key="pm-token-123456")
    provider = Provider.objects.get(name=MANAGED_NAME)
    assert provider.kind == "anymail" and provider.config["backend"] == "anymail.backends.postmark.EmailBackend"
    assert "pm-token-123456" not in provider.sealed_credentials + json.dumps(provider.config)
    assert secret(provider, "api_key_secret") == "pm-token-123456"
    with pytest.raises(InvalidInput, match="no MAILROOM_SECRET_NOPE"):
        configure_email_delivery(actor=admin_user, mode="esp", esp="postmark", api_key_secret="NOPE")


def test_back_to_the_sandbox_stops_using_the_server(db, admin_user):
    with SMTPSink() as sink:
        configure_email_delivery(actor=admin_user, mode="smtp", host="127.0.0.1", port=sink.port, security="none")
    configure_email_delivery(actor=admin_user, mode="sandbox")
    assert not Provider.objects.get(name=MANAGED_NAME).is_active
    answer = send_delivery_test(actor=admin_user, to="qa@example.com")
    assert answer.ok and answer.provider.kind == "sandbox"
    assert OutboxMessage.objects.get(pk=answer.message.pk).status == "sent"


def test_free_port_is_closed():  # the unreachable-server test relies on it
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", free_port())) != 0
