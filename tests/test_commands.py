import io
import stat
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from growth.models import LoyaltyProgram, ReferralProgram
from marketing.models import Automation, Segment
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import ConsentRecord, Contact, Provider, Topic
from messaging.schedules import HEARTBEAT
from tests.support.smtp_sink import SMTPSink, free_port

pytestmark = pytest.mark.django_db


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def test_seed_demo_loads_contacts_in_two_languages_and_time_zones_and_is_idempotent():
    run("seed_demo", contacts=40)
    assert Contact.objects.count() == 40
    assert set(Contact.objects.values_list("locale", flat=True)) == {"en", "fr"}
    assert set(Contact.objects.values_list("timezone", flat=True)) == {"Europe/Paris", "America/New_York"}
    assert Topic.objects.filter(kind="transactional").exists()
    consents = ConsentRecord.objects.count()
    assert consents > 0
    # when it runs again nothing is duplicated
    run("seed_demo", contacts=40)
    assert Contact.objects.count() == 40
    assert ConsentRecord.objects.count() == consents


def test_ensure_admin_prints_a_working_login(settings, tmp_path):
    from django.contrib.auth import authenticate

    settings.ADMIN_PASSWORD_FILE = tmp_path / "admin_password"

    out = run("ensure_admin", password="s3cret-pass")
    assert "/admin/" in out and "admin" in out and "s3cret-pass" in out
    user = authenticate(username="admin", password="s3cret-pass")
    assert user is not None and user.is_superuser
    assert user.groups.filter(name="Admin").exists()


def _printed_password(out: str) -> str:
    line = next(line for line in out.splitlines() if line.strip().startswith("password:"))
    return line.split("password:", 1)[1].split()[0]


def test_ensure_admin_keeps_the_password_it_made_and_prints_it_every_time(settings, tmp_path, client):
    # given no admin yet and no stored password
    settings.ADMIN_PASSWORD_FILE = stored = tmp_path / "var" / "admin_password"
    # when make run starts twice
    first = run("ensure_admin")
    second = run("ensure_admin")
    # then both starts print the same password, the one kept (0600) in the file
    password = _printed_password(first)
    assert len(password) >= 12
    assert _printed_password(second) == password
    assert stored.read_text().strip() == password
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    # and it logs in to the console
    response = client.post(reverse("admin:login"), {"username": "admin", "password": password, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_ensure_admin_does_not_undo_a_password_changed_in_the_console(settings, tmp_path):
    from django.contrib.auth import authenticate
    from django.contrib.auth.models import User

    settings.ADMIN_PASSWORD_FILE = stored = tmp_path / "admin_password"
    old = _printed_password(run("ensure_admin"))
    # when the admin changes the password in the console
    user = User.objects.get(username="admin")
    user.set_password("my-own-password-1")
    user.save()
    out = run("ensure_admin")
    # then the new password still works, the stale one is not printed, and the output says why
    assert authenticate(username="admin", password="my-own-password-1") is not None
    assert old not in out
    assert "changed in the console" in out and str(stored) in out
    # and deleting the file asks for a new random password, which is printed and works
    stored.unlink()
    new = _printed_password(run("ensure_admin"))
    assert new not in (old, "my-own-password-1")
    assert authenticate(username="admin", password=new) is not None
    assert stored.read_text().strip() == new


def test_ensure_admin_changes_nothing_when_the_password_cannot_be_stored(settings, tmp_path):
    from django.contrib.auth import authenticate

    settings.ADMIN_PASSWORD_FILE = tmp_path / "admin_password"
    run("ensure_admin", password="first-pass-123")
    # when var/ is not a directory any more and a new password is asked for
    (tmp_path / "var").write_text("not a directory")
    settings.ADMIN_PASSWORD_FILE = tmp_path / "var" / "admin_password"
    with pytest.raises(CommandError, match=r"Cannot store the console password.*nothing was changed"):
        run("ensure_admin", password="second-pass-456")
    # then the old password still works and nothing was written beside the old file
    assert authenticate(username="admin", password="first-pass-123") is not None
    assert authenticate(username="admin", password="second-pass-456") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["admin_password", "var"]
    assert (tmp_path / "admin_password").read_text().strip() == "first-pass-123"


def _heartbeat(age: timedelta) -> None:
    from django_q.models import Success

    stopped = timezone.now() - age
    Success.objects.create(
        id="hb" + str(age.total_seconds()).replace(".", ""), name="hb", func=HEARTBEAT, started=stopped, stopped=stopped, success=True
    )


def test_doctor_passes_when_everything_is_in_place(settings):
    settings.DEBUG = True  # no collectstatic manifest needed, dev key allowed
    _heartbeat(timedelta(seconds=30))
    out = run("doctor")
    assert "FAIL" not in out
    for name in ("Database reachable", "Migrations applied", "Cluster heartbeat", "Static files", "Content-Security-Policy"):
        assert f"PASS  {name}" in out


def test_doctor_fails_without_a_recent_cluster_heartbeat(settings):
    settings.DEBUG = True
    _heartbeat(timedelta(minutes=10))
    with pytest.raises(CommandError, match="1 check"):
        run("doctor")


def test_doctor_fails_without_csp(settings):
    settings.DEBUG = True
    _heartbeat(timedelta(seconds=5))
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "csp" not in m]
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("doctor", stdout=out)
    assert "FAIL  Content-Security-Policy" in out.getvalue()


def test_doctor_flags_the_development_secret_key_in_production(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = settings.INSECURE_DEV_KEY
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("doctor", "--skip", "heartbeat", "--skip", "static", stdout=out)
    assert "FAIL  Secret key" in out.getvalue()


def test_heartbeat_schedule_exists_after_migrate():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func=HEARTBEAT)
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 1


@pytest.mark.parametrize(("name", "hour"), [("clean delivery logs", 2), ("refresh dynamic segments", 2), ("growth: referral rewards", 1)])
def test_nightly_jobs_are_pinned_to_their_hour(name, hour):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name=name)
    local = timezone.localtime(schedule.next_run)
    assert schedule.schedule_type == Schedule.DAILY and (local.hour, local.minute) == (hour, 0)


def test_seed_demo_also_loads_segments_the_welcome_automation_and_the_growth_programs():
    output = run("seed_demo", contacts=40)
    customers = Segment.objects.get(name="All customers")
    assert customers.member_count > 0 and customers.members.count() == customers.member_count
    assert Segment.objects.filter(name__in=["VIP", "French speakers"]).count() == 2
    assert Automation.objects.get(preset="welcome").state == "active"
    assert LoyaltyProgram.objects.get().tiers.count() == 3 and ReferralProgram.objects.count() == 1
    assert "Marketing demo: All customers" in output and "Growth demo: loyalty program" in output
    # and again: nothing is added twice
    again = run("seed_demo", contacts=40)
    assert Segment.objects.count() == 3 and Automation.objects.count() == 1 and LoyaltyProgram.objects.count() == 1
    assert "Marketing demo: nothing new." in again and "Growth demo: nothing new." in again


def _doctor_output(settings) -> tuple[str, bool]:
    settings.DEBUG = True
    out = io.StringIO()
    try:
        call_command("doctor", "--skip", "heartbeat", stdout=out, stderr=io.StringIO())
    except CommandError:
        return out.getvalue(), False
    return out.getvalue(), True


def test_doctor_connects_to_an_smtp_provider_with_ehlo_and_noop(settings):
    with SMTPSink() as sink:
        Provider.objects.create(name="Relay", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": sink.port})
        out, ok = _doctor_output(settings)
    assert ok, out
    assert "PASS  Provider Relay" in out and f"127.0.0.1:{sink.port} answers EHLO and NOOP" in out
    assert not sink.handler.messages  # a check sends nothing


def test_doctor_fails_an_smtp_provider_on_a_closed_port_with_the_reason(settings):
    port = free_port()  # nothing listens there
    Provider.objects.create(name="Dead relay", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": port})
    out, ok = _doctor_output(settings)
    assert not ok
    line = next(line for line in out.splitlines() if "Dead relay" in line)
    assert line.startswith("FAIL") and f"127.0.0.1:{port} unreachable" in line and "refused" in line.lower()


def test_doctor_sends_a_head_to_an_http_provider_and_fails_a_closed_one(settings):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):
            seen.append((self.command, self.path))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        Provider.objects.create(name="SMS API", channel="sms", kind="http", config={"url": url})
        dead = f"http://127.0.0.1:{free_port()}/v1"
        Provider.objects.create(name="Dead push", channel="push", kind="http", config={"url": dead})
        Provider.objects.create(name="Box", channel="sms", kind="sandbox", priority=50)
        Provider.objects.create(name="ESP", channel="email", kind="anymail", config={"backend": "anymail.backends.test.EmailBackend"})
        Provider.objects.create(name="Off", channel="email", kind="smtp", is_active=False, config={"port": free_port()})
        out, ok = _doctor_output(settings)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [("HEAD", "/v1")]
    lines = {line.split("  ")[1].strip(): line for line in out.splitlines() if "Provider " in line}
    assert lines["Provider SMS API"].startswith("PASS") and f"HEAD {url}: 200" in lines["Provider SMS API"]
    assert lines["Provider Dead push"].startswith("FAIL") and f"HEAD {dead} failed" in lines["Provider Dead push"]
    assert lines["Provider Box"].startswith("PASS")
    assert lines["Provider ESP"].startswith("PASS") and "not checked: API provider" in lines["Provider ESP"]
    assert "Provider Off" not in lines  # inactive providers are not contacted
    assert not ok


@pytest.mark.parametrize("value", ["smtp", "anymail", "http", "Sandbox", " "])
def test_a_default_provider_that_cannot_work_is_refused_at_startup_with_the_reason(settings, value):
    from django.core.management.base import SystemCheckError

    settings.MAILROOM_DEFAULT_PROVIDER = value  # before: "smtp" passed doctor and every message waited forever
    with pytest.raises(SystemCheckError) as refused:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert "messaging.E001" in str(refused.value) and f"MAILROOM_DEFAULT_PROVIDER={value!r} is not supported" in str(refused.value)


@pytest.mark.parametrize("value", ["sandbox", "none", ""])  # "": not set, the Settings page's choice applies
def test_the_default_provider_values_that_work_pass_the_checks(settings, value):
    settings.MAILROOM_DEFAULT_PROVIDER = value
    call_command("check", stdout=io.StringIO(), stderr=io.StringIO())


def test_with_no_default_provider_a_channel_without_one_waits_and_doctor_says_so(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_DEFAULT_PROVIDER = "none"
    message = enqueue_message(channel="sms", to="+33612345678", text="Hello")
    send_due_messages()
    message.refresh_from_db()
    assert message.status == "queued" and message.provider is None
    out, ok = _doctor_output(settings)
    assert not ok and "FAIL  Providers" in out and "none configured" in out
