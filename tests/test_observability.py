"""Observability: the Prometheus /metrics endpoint, Sentry error reporting and the console's
operator notices, each proved through the product's own actions (enqueue, send through real
SMTP and sandbox providers, a real throttled page, the cluster's heartbeat task)."""

import gzip
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import lxml.html
import pytest
import sentry_sdk
import time_machine
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.signals import post_execute
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families
from sentry_sdk.transport import Transport

from config.sentry import init_sentry
from marketing.campaigns.actions import approve_campaign, create_campaign, schedule_campaign, start_campaign, submit_campaign
from marketing.campaigns.fanout import create_messages, finish_fanout, prepare_recipients
from marketing.models import Campaign
from messaging import notices
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.metrics import outbox_metrics
from messaging.models import OutboxMessage, Provider, WebhookDelivery
from messaging.models.contacts import Channel
from messaging.webhooks.endpoints import create_endpoint
from tests.marketing.conftest import SENDER, make_people, make_segment, make_version
from tests.support.cluster import database_env, start_cluster, wait_until
from tests.support.local_http import LocalServer
from tests.support.smtp_sink import SMTPSink, free_port

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-" + "x" * 30
Status = OutboxMessage.Status


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER
    settings.MAILROOM_BASE_URL = "http://testserver"
    settings.MAILROOM_METRICS_TOKEN = TOKEN
    settings.MAILROOM_NOTICES_CACHE_SECONDS = 0
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


def scrape(client, token: str = TOKEN) -> tuple[str, dict]:
    """The text and {(name, sorted labels): value} of one scrape with the bearer token."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def email(to: str, **kwargs) -> OutboxMessage:
    return enqueue_message(channel="email", to=to, subject="Hello", text="Hi there", html="<p>Hi there</p>", **kwargs)


def sandbox_sms_provider() -> Provider:
    return Provider.objects.create(
        name="SMS sandbox", channel="sms", kind="sandbox", priority=1, config={"fail_addresses": ["+33600000001"]}
    )


# --- protection ------------------------------------------------------------------------------
def test_metrics_do_not_exist_without_a_token(client, settings):
    settings.MAILROOM_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_a_wrong_or_missing_token_gets_401_with_a_challenge(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="mailroom-metrics"'
    assert b"mailroom_" not in response.content


def test_ops_and_admin_may_read_metrics_signed_in_but_not_marketers_or_support(client, ops, admin_user, marketer, support):
    for user, status in ((ops, 200), (admin_user, 200), (marketer, 403), (support, 403)):
        client.force_login(user)
        response = client.get("/metrics")
        assert response.status_code == status, user.username
        assert (b"mailroom_outbox_messages" in response.content) == (status == 200)
    client.logout()


def test_metrics_refuse_writes(client):
    assert client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405


# --- values equal what happened -----------------------------------------------------------------
def test_a_scrape_reports_what_the_delivery_engine_did(client, settings, smtp_sink, admin_user):
    settings.MAILROOM_FAILOVER_AFTER = 1  # one unreachable connection rests a provider (the product's rule)
    settings.MAILROOM_RATE_LIMITS = {**settings.MAILROOM_RATE_LIMITS, "pages": (2, 60)}
    dead = Provider.objects.create(
        name="Dead SMTP", channel="email", kind="smtp", priority=0, config={"host": "127.0.0.1", "port": free_port()}
    )
    smtp = Provider.objects.create(
        name="Local SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port}
    )
    sms = sandbox_sms_provider()
    create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/hook", event_types=["message.sent"])
    for n in range(3):
        email(f"ok{n}@example.com")
    email("hard-fail@example.com")  # 550: failed
    email("soft-fail@example.com")  # 451: queued again for a retry
    enqueue_message(channel="sms", to="+33612345678", text="Hi")
    enqueue_message(channel="sms", to="+33600000001", text="Hi")  # the sandbox refuses it
    email("later@example.com", scheduled_at=timezone.now() + timedelta(days=1))  # queued, not due
    send_due_messages()
    waiting = email("waiting@example.com")  # due, nobody drains it
    for _ in range(4):  # a real throttled page: the third request goes over the limit of 2
        client.get("/e/reset/")

    with time_machine.travel(timezone.now() + timedelta(seconds=30)):
        text, samples = scrape(client)

    # the outbox, per channel and status, equals a count of the rows
    for channel in Channel.values:
        for status in Status.values:
            expected = OutboxMessage.objects.filter(channel=channel, status=status).count()
            assert value(samples, "mailroom_outbox_messages", channel=channel, status=status) == expected, (channel, status)
    assert value(samples, "mailroom_outbox_messages", channel="email", status="sent") == 3
    assert value(samples, "mailroom_outbox_messages", channel="email", status="failed") == 1
    assert value(samples, "mailroom_outbox_messages", channel="email", status="queued") == 3  # retry, scheduled, waiting
    assert value(samples, "mailroom_outbox_messages", channel="sms", status="failed") == 1
    # the oldest due message (the one nobody drained) has waited about 30 s
    waiting.refresh_from_db()
    assert 29 <= value(samples, "mailroom_outbox_oldest_due_age_seconds") <= 31
    # providers: counters and health, as recorded on their rows
    local = {"provider": "Local SMTP", "channel": "email", "kind": "smtp"}
    assert value(samples, "mailroom_provider_sent_total", **local) == 3
    assert value(samples, "mailroom_provider_failed_total", **local) == 2  # the 550 and the 451
    assert value(samples, "mailroom_provider_retries_total", **local) == 1
    assert value(samples, "mailroom_provider_resting", **local) == 0
    sandbox = {"provider": "SMS sandbox", "channel": "sms", "kind": "sandbox"}
    assert value(samples, "mailroom_provider_sent_total", **sandbox) == 1
    assert value(samples, "mailroom_provider_failed_total", **sandbox) == 1
    assert value(samples, "mailroom_provider_retries_total", **sandbox) == 0
    dead.refresh_from_db()
    assert dead.resting_until > timezone.now()
    resting = {"provider": "Dead SMTP", "channel": "email", "kind": "smtp"}
    assert value(samples, "mailroom_provider_resting", **resting) == 1
    assert value(samples, "mailroom_provider_consecutive_failures", **resting) == 1
    assert value(samples, "mailroom_provider_last_success_timestamp_seconds", **resting) == 0
    smtp.refresh_from_db()
    assert value(samples, "mailroom_provider_last_success_timestamp_seconds", **local) == pytest.approx(smtp.last_success_at.timestamp())
    # rate limits: one client went over once (the fourth refused request is not another hit)
    assert value(samples, "mailroom_rate_limit_hits_total", scope="pages") == 1
    assert value(samples, "mailroom_rate_limit_hits_total", scope="tracking") == 0
    # webhook deliveries announcing the four sends wait for the cluster
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count()
    assert pending == 4
    assert value(samples, "mailroom_webhook_deliveries", status="pending") == pending
    assert value(samples, "mailroom_webhook_deliveries", status="failed") == 0
    # no cluster ever ran
    assert value(samples, "mailroom_cluster_heartbeat_age_seconds") == float("inf")
    # nothing personal: no address, no message content, no secret
    assert "@" not in text and "+336" not in text and "Hi there" not in text and TOKEN not in text
    assert sms.pk and smtp_sink.port  # the providers were real


def test_a_sign_in_lockout_counts_one_rate_limit_hit(client, settings, ops):
    settings.MAILROOM_RATE_LIMITS = {**settings.MAILROOM_RATE_LIMITS, "login-username": (3, 900)}
    for _ in range(5):
        client.post("/admin/login/", {"username": "ops", "password": "wrong"})
    _text, samples = scrape(client)
    assert value(samples, "mailroom_rate_limit_hits_total", scope="login-username") == 1
    assert value(samples, "mailroom_rate_limit_hits_total", scope="login-ip") == 0


def test_the_heartbeat_age_comes_from_the_cluster_task(client):
    async_task("messaging.tasks.heartbeat", sync=True)  # what the cluster runs every minute
    with time_machine.travel(timezone.now() + timedelta(seconds=42)):
        _text, samples = scrape(client)
    assert 41 <= value(samples, "mailroom_cluster_heartbeat_age_seconds") <= 44


def start_fanout(marketer, approver, newsletter, segment, version, *, name: str) -> Campaign:
    campaign = create_campaign(actor=marketer, name=name, topic=newsletter, template_version=version, segments=[segment])
    campaign = submit_campaign(actor=marketer, campaign=campaign)
    campaign = approve_campaign(actor=approver, campaign=campaign)
    campaign = schedule_campaign(actor=marketer, campaign=campaign)
    campaign = start_campaign(actor=None, campaign=campaign)
    prepare_recipients(campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def test_fanout_progress_follows_a_running_campaign(client, settings, marketer, approver, newsletter):
    settings.MAILROOM_FANOUT_CHUNK = 2
    people = make_people(newsletter, 5)
    segment = make_segment("Everyone", people)
    version = make_version(marketer, newsletter)
    campaign = start_fanout(marketer, approver, newsletter, segment, version, name="Spring sale")
    labels = {"campaign": str(campaign.pk), "channel": "email", "fanout": "running"}

    _text, samples = scrape(client)
    assert value(samples, "mailroom_campaign_fanout_planned_recipients", **labels) == 5
    assert value(samples, "mailroom_campaign_fanout_enqueued_messages", **labels) == 0
    assert value(samples, "mailroom_campaign_fanout_chunks", state="pending", **labels) == 3

    create_messages(campaign=campaign)
    _text, samples = scrape(client)
    created = OutboxMessage.objects.filter(dedup_key__startswith=f"campaign:{campaign.pk}:").count()
    assert created == 5
    assert value(samples, "mailroom_campaign_fanout_enqueued_messages", **labels) == created
    assert value(samples, "mailroom_campaign_fanout_chunks", state="done", **labels) == 3
    assert value(samples, "mailroom_campaign_fanout_chunks", state="pending", **labels) == 0

    finish_fanout(campaign=campaign)  # all created: no longer in progress
    _text, samples = scrape(client)
    assert not [key for key in samples if key[0].startswith("mailroom_campaign_fanout")]


def test_a_scrape_costs_the_same_queries_for_few_or_many_rows(
    client, settings, marketer, approver, newsletter, smtp_sink, django_assert_max_num_queries
):
    settings.MAILROOM_FANOUT_CHUNK = 2
    segment = make_segment("Everyone", make_people(newsletter, 3))
    version = make_version(marketer, newsletter)
    start_fanout(marketer, approver, newsletter, segment, version, name="First")
    Provider.objects.create(name="SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port})
    email("one@example.com")
    with CaptureQueriesContext(connection) as few:
        scrape(client)
    assert len(few) <= 11  # the oldest due message is one index probe per priority (four)

    for n in range(2):
        start_fanout(marketer, approver, newsletter, segment, version, name=f"More {n}")
    for n in range(5):
        Provider.objects.create(name=f"Extra {n}", channel="sms", kind="sandbox", priority=n)
    for n in range(40):
        email(f"many{n}@example.com")
    send_due_messages()
    with django_assert_max_num_queries(len(few)):
        _text, samples = scrape(client)
    assert len([key for key in samples if key[0] == "mailroom_campaign_fanout_planned_recipients"]) == 3


def test_the_outbox_counts_read_only_the_channel_status_index():
    sql, params = OutboxMessage.objects.order_by().values_list("channel", "status").annotate(total=Count("*")).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "COVERING INDEX outbox_channel_status" in plan, plan
        else:  # a tiny test table is read whole; with table visits priced out an index alone serves the count
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            # either (channel, status) index holds both columns: outbox_channel_status or outbox_created_channel_status
            assert "Index Only Scan using outbox_" in plan and "Seq Scan" not in plan, plan
    assert list(outbox_metrics())  # the collector runs that very query


# --- Sentry ---------------------------------------------------------------------------------------
class KeepingTransport(Transport):
    """Keeps every envelope instead of sending it: no network."""

    def __init__(self, options=None):
        super().__init__(options)
        self.envelopes = []

    def capture_envelope(self, envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict]:
        return [item.payload.json for envelope in self.envelopes for item in envelope.items if item.type in ("event", "transaction")]


@pytest.fixture
def sentry_transport():
    reset_sentry()
    transport = KeepingTransport()
    init_sentry(
        dsn="https://public@sentry.invalid/1", environment="test", release="mailroom@test", traces_sample_rate=None, transport=transport
    )
    yield transport
    sentry_sdk.get_client().close()
    reset_sentry()


def reset_sentry() -> None:
    """No client (as without SENTRY_DSN) and empty scopes. Not `sentry_sdk.init()`: that would
    start a client with the SDK's defaults, which record the signed-in user on later requests."""
    sentry_sdk.get_global_scope().set_client(None)
    for scope in (sentry_sdk.get_global_scope(), sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope()):
        scope.clear()


def test_before_send_scrubs_addresses_and_tokens_from_events(sentry_transport):
    try:
        raise ValueError("could not deliver to ada@example.com with Bearer abc.def.ghi")
    except ValueError as error:
        sentry_sdk.capture_exception(error)
    sentry_sdk.capture_event(
        {
            "message": "reset link for bob@example.org",
            "level": "error",
            "request": {
                "url": "https://mailroom.test/e/reset/Mjg:1vZxYz:Q2xvdWRmbGFyZS1zaWduYXR1cmUtdGVzdA/",
                "method": "POST",
                "query_string": "key=s3cr3t-value&page=2",
                "headers": {"Authorization": f"Bearer {TOKEN}", "Cookie": "sessionid=abc", "User-Agent": "pytest"},
                "data": {"email": "carol@example.net", "note": "call dave@example.com"},
            },
        }
    )
    sentry_sdk.flush()
    events = sentry_transport.events()
    assert len(events) == 2
    dumped = repr(events)
    for secret in ("ada@example.com", "bob@example.org", "carol@example.net", "dave@example.com", TOKEN, "s3cr3t", "sessionid=abc"):
        assert secret not in dumped, secret
    exception, message = events
    assert "[email]" in exception["exception"]["values"][0]["value"]
    assert exception["exception"]["values"][0]["type"] == "ValueError"  # the error itself is kept
    assert message["request"]["headers"]["Authorization"] == "[Filtered]"
    assert message["request"]["headers"]["User-Agent"] == "pytest"
    assert message["request"]["data"]["note"] == "call [email]"
    assert "page=2" in message["request"]["query_string"]
    assert message["environment"] == "test" and message["release"] == "mailroom@test"
    assert "user" not in message  # data_collection: no user identity (send_default_pii=False in sentry-sdk 2)


@pytest.mark.urls("tests.support.error_urls")
def test_an_error_in_a_web_request_is_reported_without_personal_data(live_server, client, ops, sentry_transport):
    client.force_login(ops)  # a signed-in staff member's request: who they are stays out of the event
    session = client.cookies["sessionid"].value
    request = urllib.request.Request(
        f"{live_server.url}/test-error/?contact=frank@example.com&token=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5&page=2",
        data=urllib.parse.urlencode({"email": "grace@example.com", "password": "hunter2-secret"}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Cookie": f"sessionid={session}", "User-Agent": "observability-test"},
    )
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(request, timeout=10)
    assert failure.value.code == 500
    sentry_sdk.flush()
    (event,) = sentry_transport.events()  # through Sentry's Django and WSGI integrations, as under gunicorn
    dumped = repr(event)
    for secret in ("frank@example.com", "grace@example.com", "hunter2", TOKEN, session, "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5", "ops@staff.test"):
        assert secret not in dumped, secret
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert event["exception"]["values"][-1]["value"] == "could not reach [email] for [email]"
    assert event["request"]["url"].endswith("/test-error/")
    assert event["request"]["method"] == "POST"
    assert event["request"]["headers"]["User-Agent"] == "observability-test"
    assert "page=2" in event["request"]["query_string"]
    assert "user" not in event and "data" not in event["request"]  # no user, no request body


def test_a_failed_cluster_task_is_reported_once_grouped_by_its_function(sentry_transport):
    task = {
        "id": "abc",
        "name": "seven-oranges",
        "func": "messaging.tasks.drain_outbox",
        "success": False,
        "result": "SMTP refused erin@example.com : Traceback (most recent call last): ...",
    }
    post_execute.send(sender="django_q", task=task)  # what django-q2's monitor sends after each task
    post_execute.send(sender="django_q", task={**task, "success": True, "result": 3})
    sentry_sdk.flush()
    (event,) = sentry_transport.events()
    assert event["fingerprint"] == ["django-q", "messaging.tasks.drain_outbox"]
    assert event["message"] == "Cluster task messaging.tasks.drain_outbox failed: SMTP refused [email]"
    assert "erin@example.com" not in repr(event)


@pytest.mark.reliability
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_reports_a_failed_task_to_sentry(tmp_path):
    """A real `manage.py qcluster` with SENTRY_DSN pointing at a local HTTP server standing in
    for Sentry's ingest: a task that fails there arrives as one scrubbed event."""
    with LocalServer(lambda request: (200, {"id": "ok"})) as ingest:
        port = ingest.url.rsplit(":", 1)[1]
        env = {
            **os.environ,
            **database_env(connection.settings_dict),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "SENTRY_DSN": f"http://public@127.0.0.1:{port}/1",
            "MAILROOM_Q_WORKERS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        cluster = start_cluster(env=env, log_path=tmp_path / "cluster.log")
        try:
            # Not a registered job: the guard swaps it for one that fails with the reason.
            async_task("ada@example.com.steal")
            envelope = wait_until(
                lambda: next((body for body in map(envelope_text, ingest.requests) if "Cluster task" in body), None),
                timeout=60,
                what=f"the failed task's event at the fake Sentry; cluster log:\n{cluster.tail()}",
            )
        finally:
            cluster.kill()
    assert "Cluster task messaging.tasks.refuse_unregistered_job failed: Refused to run [email]" in envelope
    assert '"fingerprint":["django-q","messaging.tasks.refuse_unregistered_job"]' in envelope.replace(" ", "")
    assert "ada@example.com" not in envelope


def envelope_text(request) -> str:
    body = gzip.decompress(request.body) if request.headers.get("Content-Encoding") == "gzip" else request.body
    return body.decode(errors="replace")


def run_python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")} | {"DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment | env, cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


SENTRY_STATE = (
    "import django; django.setup(); import sentry_sdk; c = sentry_sdk.get_client(); "
    "print(c.is_active(), c.is_active() and c.options['data_collection']['user_info'], c.options.get('traces_sample_rate'), "
    "c.options.get('environment'), c.options.get('release'), c.options.get('before_send').__name__ if c.is_active() else None)"
)


def test_sentry_is_off_without_a_dsn_and_on_with_one():
    assert run_python(SENTRY_STATE).startswith("False")
    on = run_python(SENTRY_STATE, SENTRY_DSN="https://public@127.0.0.1:9/1", SENTRY_ENVIRONMENT="staging", SENTRY_RELEASE="r42")
    assert on == "True False None staging r42 scrub_event"
    traced = run_python(SENTRY_STATE, SENTRY_DSN="https://public@127.0.0.1:9/1", SENTRY_TRACES_SAMPLE_RATE="0.25")
    assert traced.split()[2] == "0.25"


# --- console notices --------------------------------------------------------------------------------
def dashboard(client, user):
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 200
    return response


def dashboard_badge(response) -> str:
    """The badge on the sidebar's Dashboard link ("" when it has none)."""
    link = lxml.html.fromstring(response.content).xpath('//a[@href="/admin/"][.//span[normalize-space()="Dashboard"]]')[0]
    return "".join(badge.text_content().strip() for badge in link.xpath('.//span[contains(@class, "sidebar-badge")]'))


def kinds(response) -> list[str]:
    return [notice.kind for notice in response.context["notices"]]


def test_ops_and_admin_see_a_missing_heartbeat_with_what_to_do(client, ops, admin_user):
    for user in (ops, admin_user):
        response = dashboard(client, user)
        assert kinds(response) == ["heartbeat_missing"]
        page = response.content.decode()
        assert 'data-kind="heartbeat_missing"' in page
        assert "No task cluster is running" in page and "Start the cluster: make run starts one" in page
    async_task("messaging.tasks.heartbeat", sync=True)
    assert kinds(dashboard(client, ops)) == []


def test_marketers_and_support_see_no_operator_notices(client, marketer, support):
    for user in (marketer, support):
        response = dashboard(client, user)
        assert response.context["notices"] == []
        assert 'data-testid="notices"' not in response.content.decode()


def test_a_resting_provider_is_named_with_its_rest(client, settings, ops, marketer):
    settings.MAILROOM_FAILOVER_AFTER = 1
    async_task("messaging.tasks.heartbeat", sync=True)
    Provider.objects.create(name="Dead SMTP", channel="email", kind="smtp", priority=0, config={"host": "127.0.0.1", "port": free_port()})
    Provider.objects.create(name="Backup", channel="email", kind="sandbox", priority=1)
    email("ada@example.com")
    send_due_messages()
    response = dashboard(client, ops)
    assert kinds(response) == ["provider_resting"]
    (notice,) = response.context["notices"]
    assert notice.title == "Provider Dead SMTP (Email) is resting"
    assert "failed 1 time in a row" in notice.text and "until" in notice.text
    # the sidebar's Dashboard entry carries the count on every console page
    assert dashboard_badge(client.get("/admin/messaging/contact/")) == "1"
    client.force_login(marketer)
    assert dashboard_badge(client.get("/admin/messaging/contact/")) == ""  # not theirs to act on


def test_a_late_backlog_and_a_large_one_raise_notices(client, settings, ops):
    settings.MAILROOM_BACKLOG_ALERT_MINUTES = 15
    settings.MAILROOM_BACKLOG_ALERT_COUNT = 2
    async_task("messaging.tasks.heartbeat", sync=True)
    email("a@example.com")
    email("b@example.com")
    assert kinds(dashboard(client, ops)) == []  # 2 due: not more than 2, and not late
    email("c@example.com")
    assert kinds(dashboard(client, ops)) == ["backlog_large"]
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        async_task("messaging.tasks.heartbeat", sync=True)
        response = dashboard(client, ops)
        assert kinds(response) == ["backlog_late", "backlog_large"]
        assert "The oldest due message has waited 16 minutes" in response.content.decode()


def test_notices_are_cached_per_process_for_a_few_seconds(client, settings, ops, django_assert_max_num_queries):
    settings.MAILROOM_NOTICES_CACHE_SECONDS = 10
    notices.forget()
    assert kinds(dashboard(client, ops)) == ["heartbeat_missing"]
    async_task("messaging.tasks.heartbeat", sync=True)
    assert kinds(dashboard(client, ops)) == ["heartbeat_missing"]  # still the cached figures
    with django_assert_max_num_queries(0):
        notices.facts()
    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        assert kinds(dashboard(client, ops)) == []


# --- settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "bad", "code"),
    [
        ("MAILROOM_BACKLOG_ALERT_MINUTES", -1, "mailroom.E010"),
        ("MAILROOM_BACKLOG_ALERT_COUNT", -5, "mailroom.E011"),
        ("MAILROOM_HEARTBEAT_ALERT_SECONDS", 30, "mailroom.E012"),
        ("MAILROOM_NOTICES_CACHE_SECONDS", -1, "mailroom.E013"),
        ("MAILROOM_METRICS_TOKEN", "short", "mailroom.E014"),
        ("SENTRY_TRACES_SAMPLE_RATE", 1.5, "mailroom.E015"),
    ],
)
def test_bad_observability_settings_are_refused_by_the_system_check(settings, name, bad, code):
    setattr(settings, name, bad)
    with pytest.raises(SystemCheckError, match=code):
        call_command("check")


def test_the_default_observability_settings_pass_the_check(settings):
    call_command("check")  # raises on any error
