"""Secrets and signatures as the Standard Webhooks specification describes them
(https://www.standardwebhooks.com), through its reference package `standardwebhooks`:
webhook-signature is "v1,<base64 HMAC-SHA256 of 'id.timestamp.body'>" keyed with the
secret "whsec_<base64>"."""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(*, secret: str, webhook_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, timestamp, body),
        "content-type": "application/json",
    }
