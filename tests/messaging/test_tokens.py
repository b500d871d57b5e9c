"""Tokens already sent in emails keep opening their pages: the wire format is Django's
`signing.dumps`, byte for byte. The tokens below were made by the signer used before
CachedKeySigner (a hand-written copy of Django's format), with the key and the instant
fixed here; changing how tokens are made must never stop them from verifying."""

import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import signing
from django.test import override_settings

from messaging import tokens
from messaging.delivery.tracking import PUBLIC_TOKENS, message_from_token, read_public_token
from messaging.tokens import TokenExpired, TokenInvalid, TokenService, conceal_id, never

KEY = "mailroom-wire-format-test-key-0123456789abcdefghijklmnop"
ISSUED = datetime(2026, 1, 1, tzinfo=UTC)
MESSAGE_PK = 42
CONCEALED = "36UmNa8JeaN"  # conceal_id(42) under KEY

# salt -> (payload, token made at ISSUED under KEY by the former signer)
ISSUED_TOKENS = {
    "mailroom.click": (CONCEALED, "IjM2VW1OYThKZWFOIg:1vb66i:YgTrwCU1Nc9EOeL3kirIGFF8bqEw-ZQEYF2CrTdZIpo"),
    "mailroom.open": (CONCEALED, "IjM2VW1OYThKZWFOIg:1vb66i:RU8uv0fXMgEL1ofTBnbfeORKKNMuEZzdlD51r32bOPQ"),
    "mailroom.unsubscribe": ({"m": CONCEALED}, "eyJtIjoiMzZVbU5hOEplYU4ifQ:1vb66i:eZ_YkPWWFY4ajsqXCRlHiZsps1JLE2y3v0Ks3UOCRCA"),
    "mailroom.preferences": ({"m": CONCEALED}, "eyJtIjoiMzZVbU5hOEplYU4ifQ:1vb66i:nwc1SWdCJ9GvFxk_VJtab2FolxU-ZyplUNHGrQrfCCM"),
    "mailroom.view": ({"m": CONCEALED}, "eyJtIjoiMzZVbU5hOEplYU4ifQ:1vb66i:47ZozevEnEz39goSCoGjIbL7WVGKxTsm3FUKc1TREs8"),
}
COMPRESSED_PAYLOAD = {"m": CONCEALED, "t": "newsletter", "l": list(range(1, 20))}
COMPRESSED_TOKEN = (
    ".eJwNyK0SQEAYhtF7-fITvNb-cAmCJhlB2GYFdkYw7p0Tz2PFBnNhLtOWxrxNhtV_jnxfe641n3_sNiyixdHhCUQSPWqQUIsc6pBHAUWUUL--Hzl4FgE"
    ":1vb66i:E1Um3cPobvTM2LDIqW3Y4JWHo3rPvo5VvpNMtDM34Ag"
)
COMPRESSED = {"mailroom.unsubscribe", "mailroom.preferences", "mailroom.view"}


@pytest.fixture
def fixed_key():
    with override_settings(SECRET_KEY=KEY, SECRET_KEY_FALLBACKS=[]):
        yield


@pytest.mark.parametrize("salt", ISSUED_TOKENS)
def test_a_token_issued_by_the_former_signer_reads_back_and_is_made_the_same(fixed_key, salt):
    payload, token = ISSUED_TOKENS[salt]
    service = TokenService(salt, max_age=never, compress=salt in COMPRESSED)
    read = service.read(token)
    assert read.data == payload and read.issued_at == ISSUED
    assert signing.loads(token, salt=salt) == payload  # Django's own format
    with time_machine.travel(ISSUED, tick=False):
        assert service.make(payload) == token  # byte for byte


def test_a_compressed_token_issued_by_the_former_signer_reads_back(fixed_key):
    service = TokenService("mailroom.unsubscribe", max_age=never, compress=True)
    assert service.read(COMPRESSED_TOKEN).data == COMPRESSED_PAYLOAD
    with time_machine.travel(ISSUED, tick=False):
        assert service.make(COMPRESSED_PAYLOAD) == COMPRESSED_TOKEN


def test_the_links_in_emails_already_sent_still_lead_to_their_message(fixed_key, settings):
    assert conceal_id(MESSAGE_PK) == CONCEALED
    # an unsubscribe link never expires; the others do after MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS
    assert read_public_token(ISSUED_TOKENS["mailroom.unsubscribe"][1], "__MAILROOM_UNSUBSCRIBE__") == MESSAGE_PK
    with time_machine.travel(ISSUED + timedelta(days=1), tick=False):
        assert message_from_token(ISSUED_TOKENS["mailroom.click"][1]) == MESSAGE_PK
        assert read_public_token(ISSUED_TOKENS["mailroom.preferences"][1], "__MAILROOM_PREFERENCES__") == MESSAGE_PK
        assert read_public_token(ISSUED_TOKENS["mailroom.view"][1], "__MAILROOM_VIEW__") == MESSAGE_PK
    with time_machine.travel(ISSUED + timedelta(days=settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS + 1), tick=False):
        assert message_from_token(ISSUED_TOKENS["mailroom.click"][1]) is None
        with pytest.raises(TokenExpired):
            read_public_token(ISSUED_TOKENS["mailroom.preferences"][1], "__MAILROOM_PREFERENCES__")


def test_a_token_for_one_purpose_never_opens_another(fixed_key):
    with pytest.raises(TokenInvalid):
        PUBLIC_TOKENS["__MAILROOM_PREFERENCES__"].read(ISSUED_TOKENS["mailroom.unsubscribe"][1])


def test_after_a_key_rotation_tokens_signed_with_the_old_key_read_while_it_is_a_fallback():
    _payload, token = ISSUED_TOKENS["mailroom.unsubscribe"]
    service = TokenService("mailroom.unsubscribe", max_age=never, compress=True)
    with override_settings(SECRET_KEY="the-new-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[KEY]):
        assert service.read(token).data == {"m": CONCEALED}
        assert service.make({"m": CONCEALED}) != token  # new tokens use the new key
    with override_settings(SECRET_KEY="the-new-key-" + "y" * 40, SECRET_KEY_FALLBACKS=[]), pytest.raises(TokenInvalid):
        service.read(token)


def test_the_salted_key_is_derived_once_not_per_token(fixed_key):
    service = TokenService("mailroom.test-derivation", max_age=never)
    service.read(service.make("warm"))
    misses = tokens._derived_mac.cache_info().misses
    for number in range(50):
        assert service.read(service.make(number)).data == number
    assert tokens._derived_mac.cache_info().misses == misses


@pytest.mark.parametrize(
    "payload",
    [CONCEALED, {"m": CONCEALED}, COMPRESSED_PAYLOAD, 42, None, ["a", 1, {"é": "Zoë ✓"}], {"m": "a" * 40}, {"k": {"n": [1.5, True]}}],
)
@pytest.mark.parametrize("compress", [False, True])
def test_tokens_are_made_as_django_makes_them(fixed_key, payload, compress):
    # given Django's own signer and ours, at one instant
    service = TokenService("mailroom.same-format", max_age=never, compress=compress)
    with time_machine.travel(ISSUED, tick=False):
        made = service.make(payload)
        # then the token is byte for byte what signing.dumps makes, and reads back
        assert made == signing.dumps(payload, salt="mailroom.same-format", compress=compress)
    assert service.read(made).data == payload
    # and one second later the timestamp (encoded once a second) moves on
    with time_machine.travel(ISSUED + timedelta(seconds=1), tick=False):
        later = service.make(payload)
        assert later == signing.dumps(payload, salt="mailroom.same-format", compress=compress)
        assert later != made


def test_a_token_cannot_be_made_of_what_json_cannot_carry(fixed_key):
    service = TokenService("mailroom.same-format", max_age=never)
    with pytest.raises(TypeError):
        service.make({"m": object()})


@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 65, 200])
@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "sha1"])
def test_keyed_hash_is_the_hmac_module_byte_for_byte(key_length, algorithm):
    hasher = getattr(hashlib, algorithm)
    for seed in range(20):
        key, prefix, message = os.urandom(key_length), os.urandom(seed % 3), os.urandom(seed * 7)
        expected = hmac.new(key, prefix + message, hasher).digest()
        assert tokens.KeyedHash(key, hasher, prefix=prefix).digest(message) == expected
