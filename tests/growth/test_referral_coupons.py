"""Referral coupons: a discount reward hands out a single-use code, generated or from the
host's pool. The customer reads it in the reward email (through a real SMTP sink), the host
in a signed webhook (a real HTTP server on loopback); staff never read it again: console
pages, API answers, audit entries and the webhook delivery log show •••• last 4 at most."""

import json
import re
from decimal import Decimal
from email import message_from_bytes, policy

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import IntegrityError
from django.urls import reverse
from standardwebhooks import Webhook

from growth.coupons import COUPON_SALT, coupon_hash, parse_codes, upload_coupon_codes
from growth.errors import CouponPoolEmpty
from growth.models import CouponCode, CouponSource, Referral, ReferralProgram, ReferralReward, RewardKind
from growth.referrals import get_or_create_referral_code, process_referral_rewards, reward_referral, sign_up_with_referral
from marketing.events import record_order
from messaging.consent import subscribe
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, OutboxMessage, Provider, Topic, WebhookDelivery
from messaging.secrets import unseal_text
from messaging.webhooks.dispatch import send_due_webhooks
from messaging.webhooks.endpoints import create_endpoint, replay_delivery
from tests.support.local_http import LocalServer
from tests.support.smtp_sink import SMTPSink

pytestmark = pytest.mark.django_db(transaction=True)

POOL = ["SHOP-10-AAAA", "SHOP-10-BBBB", "SHOP-10-CCCC"]
GENERATED = re.compile(r"REF-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}")
EVENTS = ["referral.coupon_issued", "referral.coupon_revoked"]


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.MAILROOM_WEBHOOK_TIMEOUT_SECONDS = 3


@pytest.fixture
def coupon_program(referral_program) -> ReferralProgram:
    """The referrer gets 15.00 EUR off as a generated code; the friend 10 % off from the pool."""
    referral_program.referrer_reward_kind, referral_program.referrer_reward_value = RewardKind.FIXED, Decimal("15")
    referral_program.referrer_coupon, referral_program.coupon_prefix = CouponSource.GENERATED, "REF"
    referral_program.friend_coupon = CouponSource.POOL
    referral_program.full_clean()
    referral_program.save()
    return referral_program


@pytest.fixture
def promotions(db) -> Topic:
    topic = Topic.objects.create(key="promotions", name="Promotions", kind=Topic.Kind.MARKETING)
    call_command("sync_templates", verbosity=0)
    return topic


@pytest.fixture
def smtp():
    with SMTPSink() as sink:
        Provider.objects.create(
            name="Local SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": sink.port}
        )
        yield sink


@pytest.fixture
def host():
    with LocalServer(lambda request: (200, {"ok": True})) as server:
        yield server


def qualified_referral(program: ReferralProgram, referrer, email: str, order: str, *, locale: str = "en") -> Referral:
    code = get_or_create_referral_code(contact=referrer, program=program).code
    referral = sign_up_with_referral(code=code, email=email, first_name="Linus", locale=locale)
    record_order(contact=referral.friend, external_id=order, amount="100", status="paid")
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED
    return referral


def received_text(raw: bytes) -> str:
    parsed = message_from_bytes(raw, policy=policy.default)
    return "\n".join(part.get_content() for part in parsed.walk() if part.get_content_type() in ("text/plain", "text/html"))


@pytest.fixture
def rewarded(coupon_program, referrer, promotions, smtp, host, marketer):
    """One referral rewarded end to end: emails sent to the sink, webhooks to the host."""
    upload_coupon_codes(actor=marketer, program=coupon_program, role="friend", text="\n".join(POOL))
    endpoint = create_endpoint(actor=None, name="Shop", url=host.url + "/hooks", event_types=EVENTS)
    referral = qualified_referral(coupon_program, referrer, "linus@example.org", "F-1")
    for contact in (referrer, referral.friend):
        subscribe(actor=None, contact=contact, topic=promotions)
    assert process_referral_rewards()["rewarded"] == 1
    assert send_due_messages() == 2
    assert send_due_webhooks() == 2
    return {"referral": referral, "secret": endpoint.secret, "smtp": smtp, "host": host}


def issued_codes(rewarded) -> dict[str, str]:
    """{role: code} as the host received them, signature checked the Standard Webhooks way."""
    codes = {}
    for request in rewarded["host"].requests:
        payload = Webhook(rewarded["secret"]).verify(request.body, {k.lower(): v for k, v in request.headers.items()})
        assert payload["type"] == "referral.coupon_issued"
        codes[payload["data"]["role"]] = payload["data"]["code"]
    return codes


def test_generated_and_pool_coupons_reach_the_customers_and_the_host(rewarded, referrer):
    referral = rewarded["referral"]
    # the host heard of both coupons, signed, with what it needs to honour them at checkout
    payloads = {json.loads(r.body)["data"]["role"]: json.loads(r.body)["data"] for r in rewarded["host"].requests}
    codes = issued_codes(rewarded)
    assert GENERATED.fullmatch(codes["referrer"]), codes
    assert codes["friend"] == POOL[0]  # the oldest code of the pool
    rewards = {r.role: r for r in ReferralReward.objects.filter(referral=referral)}
    assert payloads["referrer"] | {"code": "…"} == {
        "referral_id": referral.pk,
        "reward_id": rewards["referrer"].pk,
        "role": "referrer",
        "contact_id": referrer.pk,
        "coupon_id": rewards["referrer"].coupon.pk,
        "code": "…",
        "source": "generated",
        "discount": {"kind": "fixed", "value": "15.00", "currency": "EUR"},
    }
    assert payloads["friend"]["discount"] == {"kind": "percent", "value": "10.00", "currency": "EUR"}
    # each customer's email, as received over SMTP, shows their own code
    mails = {message_from_bytes(raw, policy=policy.default)["To"]: received_text(raw) for raw in rewarded["smtp"].messages}
    assert codes["referrer"] in mails["grace@example.com"] and codes["friend"] not in mails["grace@example.com"]
    assert codes["friend"] in mails["linus@example.org"] and "welcome" in mails["linus@example.org"]
    assert "15.00 EUR off your next order" in mails["grace@example.com"]
    # only a hash and the last four are stored; the pool code's seal is gone
    for role, coupon in ((r, rewards[r].coupon) for r in rewards):
        assert (coupon.status, coupon.code_hash, coupon.last4, coupon.sealed_code) == (
            "issued",
            coupon_hash(codes[role]),
            codes[role][-4:],
            "",
        )
    assert CouponCode.objects.filter(status="available").count() == 2


def test_nothing_stored_or_shown_to_staff_holds_a_code(rewarded, client, admin_user):
    codes = list(issued_codes(rewarded).values())
    # the rows: outbox bodies hold markers, their seals are dropped after sending; the
    # webhook deliveries are sealed at rest; audit entries hold no code
    stored = [
        *OutboxMessage.objects.values_list("subject", "body__text", "body__html", "sealed_secrets"),
        *WebhookDelivery.objects.values_list("body"),
        *AuditEntry.objects.values_list("changes"),
        *CouponCode.objects.values_list("sealed_code", "code_hash", "last4"),
    ]
    assert stored and not [row for row in stored if any(code in json.dumps(row) for code in codes)]
    assert WebhookDelivery.objects.filter(is_sealed=True).count() == 2
    # every page and answer a superuser can open
    client.force_login(admin_user)
    referral = rewarded["referral"]
    coupon = CouponCode.objects.filter(role="referrer").get()
    delivery = WebhookDelivery.objects.first()
    message = OutboxMessage.objects.first()
    pages = [
        reverse("admin:growth_couponcode_changelist"),
        reverse("admin:growth_couponcode_change", args=[coupon.pk]),
        reverse("admin:growth_referral_change", args=[referral.pk]),
        reverse("admin:growth_referralprogram_change", args=[referral.program_id]),
        reverse("admin:messaging_webhookdelivery_changelist"),
        reverse("admin:messaging_webhookdelivery_change", args=[delivery.pk]),
        reverse("admin:messaging_outboxmessage_change", args=[message.pk]),
        reverse("admin:messaging_auditentry_changelist"),
        "/api/v1/webhooks/deliveries/",
        f"/api/v1/webhooks/deliveries/{delivery.pk}/",
        f"/api/v1/referral-programs/{referral.program_id}/coupon-codes/",
        "/api/v1/referrals/",
        f"/api/v1/contacts/{referral.referrer_id}/referral/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert not [code for code in codes if code in content], url
    # what staff see instead
    assert f"•••• {coupon.last4}" in client.get(reverse("admin:growth_couponcode_changelist")).content.decode()
    assert "hidden: contains a secret" in client.get(reverse("admin:messaging_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert client.get(f"/api/v1/webhooks/deliveries/{delivery.pk}/").json()["is_sealed"] is True


def test_retries_and_replays_send_the_same_sealed_bytes_under_the_same_id(rewarded):
    host = rewarded["host"]
    first = host.requests[0]
    delivery = WebhookDelivery.objects.get(webhook_id=first.headers["webhook-id"])
    replay_delivery(actor=None, delivery=delivery)
    assert send_due_webhooks() == 1
    again = host.requests[-1]
    assert (again.headers["webhook-id"], again.body) == (first.headers["webhook-id"], first.body)
    Webhook(rewarded["secret"]).verify(again.body, {k.lower(): v for k, v in again.headers.items()})


def test_refund_revokes_the_coupons_and_tells_the_host(rewarded):
    referral = rewarded["referral"]
    before = len(rewarded["host"].requests)
    record_order(contact=referral.friend, external_id="F-1", amount="100", status="refunded")
    referral.refresh_from_db()
    assert referral.status == Referral.Status.REVERSED
    assert set(CouponCode.objects.filter(reward__referral=referral).values_list("status", flat=True)) == {"revoked"}
    assert send_due_webhooks() == 2
    revoked = [json.loads(r.body) for r in rewarded["host"].requests[before:]]
    assert {b["type"] for b in revoked} == {"referral.coupon_revoked"}
    coupons = {c.pk: c.last4 for c in CouponCode.objects.filter(reward__referral=referral)}
    assert {b["data"]["coupon_id"]: b["data"]["last4"] for b in revoked} == coupons
    # a revocation carries no code, so it is not sealed and its body may be shown
    assert not WebhookDelivery.objects.filter(event_type="referral.coupon_revoked", is_sealed=True).exists()
    assert AuditEntry.objects.filter(verb="coupon_revoked").count() == 2


def test_an_empty_pool_keeps_the_referral_waiting_until_codes_are_uploaded(coupon_program, referrer, marketer, client, admin_user):
    # given a friend pool with no code
    referral = qualified_referral(coupon_program, referrer, "wait@example.org", "W-1")
    # when the daily job runs, nothing is given (no reward, no coupon) and the referral waits
    assert process_referral_rewards() == {"expired": 0, "rewarded": 0, "waiting": 1, "failed": 0}
    with pytest.raises(CouponPoolEmpty, match="empty"):
        reward_referral(referral=referral)
    referral.refresh_from_db()
    assert referral.status == Referral.Status.QUALIFIED
    assert not ReferralReward.objects.exists() and not CouponCode.objects.exists()
    # the program page says so
    client.force_login(admin_user)
    page = client.get(reverse("admin:growth_referralprogram_change", args=[coupon_program.pk])).content.decode()
    assert "1 qualified referrals wait for coupon codes" in page
    # once codes are uploaded the next run rewards it
    upload_coupon_codes(actor=marketer, program=coupon_program, role="friend", text="LATE-CODE-1")
    assert process_referral_rewards()["rewarded"] == 1
    assert CouponCode.objects.get(role="friend").reward.referral == referral


def test_upload_skips_blanks_and_duplicates_and_keeps_codes_sealed(coupon_program, marketer):
    text = "\n  CODE-ONE \n\ncode-one\nCODE-TWO\r\nCODE-THREE\n"
    result = upload_coupon_codes(actor=marketer, program=coupon_program, role="friend", text=text)
    assert (result.added, result.duplicates) == (3, 1)
    again = upload_coupon_codes(actor=marketer, program=coupon_program, role="referrer", text="CODE-TWO\nCODE-FOUR")
    assert (again.added, again.duplicates) == (1, 1)  # a code is single-use across every pool
    stored = CouponCode.objects.get(last4="FOUR")
    assert unseal_text(stored.sealed_code, salt=COUPON_SALT) == "CODE-FOUR"
    assert "CODE-FOUR" not in stored.sealed_code
    entry = AuditEntry.objects.filter(verb="coupon_codes_uploaded").order_by("id").first()
    assert entry.changes == {"role": "friend", "added": 3, "skipped": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "No codes found"),
        (" \n\n", "No codes found"),
        ("GOOD-CODE\nBAD CODE", "line 2: only letters, digits"),
        ("GOOD-CODE\n" + "A" * 65, "line 2: longer than 64 characters"),
        ("AB", "line 1: shorter than 4"),
        ("\n".join(f"CODE-{n:05d}" for n in range(10_001)), "Too many codes: at most 10000"),
    ],
)
def test_bad_uploads_store_nothing_and_say_why(coupon_program, marketer, text, message):
    with pytest.raises(InvalidInput, match=message):
        upload_coupon_codes(actor=marketer, program=coupon_program, role="friend", text=text)
    assert not CouponCode.objects.exists()
    assert not AuditEntry.objects.filter(verb="coupon_codes_uploaded").exists()


def test_a_bad_line_is_named_and_nothing_half_uploaded(coupon_program, marketer):
    with pytest.raises(InvalidInput) as caught:
        parse_codes("OK-CODE-1\nnot ok!\nOK-CODE-2\nalso bad?")
    assert "2 bad codes" in str(caught.value) and "line 2" in str(caught.value) and "line 4" in str(caught.value)


def test_console_upload_from_a_file_and_a_bad_paste(coupon_program, client, marketer):
    client.force_login(marketer)
    url = reverse("admin:growth_referralprogram_upload_coupons", args=[coupon_program.pk])
    assert client.get(url).status_code == 200
    # a bad paste: 400, the reason, nothing stored, the codes not echoed back
    response = client.post(url, {"role": "friend", "codes": "SECRET-GOOD-1\nbad code"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "line 2: only letters, digits" in page and "SECRET-GOOD-1" not in page
    assert not CouponCode.objects.exists()
    # a file
    upload = SimpleUploadedFile("codes.txt", b"\xef\xbb\xbfFILE-CODE-1\nFILE-CODE-2\n\nFILE-CODE-2\n", content_type="text/plain")
    response = client.post(url, {"role": "friend", "codes": "", "file": upload})
    assert response.status_code == 302
    assert CouponCode.objects.filter(program=coupon_program, role="friend", status="available").count() == 2
    program_page = client.get(reverse("admin:growth_referralprogram_change", args=[coupon_program.pk])).content.decode()
    assert "2 available, 0 issued, 0 revoked" in program_page and "FILE-CODE-1" not in program_page


def test_api_upload_answers_counts_only(coupon_program, key_client):
    client = key_client("Marketer")
    url = f"/api/v1/referral-programs/{coupon_program.pk}/coupon-codes/"
    response = client.post(url, {"role": "referrer", "codes": ["API-CODE-1", "API-CODE-2", "API-CODE-1"]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["referrer"]["available"] == 2 and response.json()["skipped"] == 1
    assert "API-CODE" not in response.content.decode()
    bad = client.post(url, {"role": "friend", "codes": ["OK-CODE-9", "no way"]}, format="json")
    assert bad.status_code == 400 and "line 2" in bad.content.decode()
    assert CouponCode.objects.count() == 2


def test_a_coupon_is_for_discounts_only(referral_program):
    referral_program.referrer_coupon = CouponSource.GENERATED  # the referrer's reward is points
    with pytest.raises(ValidationError, match="represents a discount"):
        referral_program.full_clean()
    with pytest.raises(IntegrityError):
        referral_program.save()


def test_programs_without_coupons_reward_as_before(referral_program, referrer, loyalty_program, promotions):
    referral = qualified_referral(referral_program, referrer, "plain@example.org", "P-1")
    assert process_referral_rewards()["rewarded"] == 1
    assert not CouponCode.objects.exists()
    assert {r.kind for r in ReferralReward.objects.filter(referral=referral)} == {"points", "percent"}
    # one email, to the referrer, worded as before and without a code block
    (message,) = OutboxMessage.objects.all()
    assert message.contact_id == referrer.pk and not message.is_sensitive
    assert "a friend you invited has just joined" in message.body_html and "single-use code" not in message.body_html


def test_a_french_friend_reads_their_code_in_french(coupon_program, referrer, promotions, smtp, marketer):
    upload_coupon_codes(actor=marketer, program=coupon_program, role="friend", text="CODE-FR-0001")
    referral = qualified_referral(coupon_program, referrer, "amelie@example.fr", "FR-1", locale="fr")
    subscribe(actor=None, contact=referral.friend, topic=promotions)
    process_referral_rewards()
    send_due_messages()
    (raw,) = [raw for raw in smtp.messages if b"amelie@example.fr" in raw]
    text = received_text(raw)
    assert "CODE-FR-0001" in text and "bienvenue" in text and "usage unique" in text
