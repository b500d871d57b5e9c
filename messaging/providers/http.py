"""HTTP API providers: Twilio-style SMS and WhatsApp (push: messaging.providers.fcm). One
keep-alive connection per batch; 429 and 5xx are temporary, other 4xx are permanent."""

import base64
import http.client
import json
from urllib.parse import urlencode, urlsplit

from django.urls import reverse

from messaging import site
from messaging.metadata import WHATSAPP_TEMPLATE_KEY
from messaging.models import OutboxMessage, Provider
from messaging.providers.base import ProviderMisconfigured, Result, Session, final_text, permanent, secret, sent, transient
from messaging.secrets import reveal

# Twilio error codes meaning the number itself cannot receive messages.
BAD_NUMBER_CODES = {21211, 21214, 21217, 21612, 21614, 63003}


class HTTPSession(Session):
    default_url = ""  # where the provider's API lives when the config names no `url`

    def __enter__(self) -> "HTTPSession":
        url = self.provider.config.get("url") or self.default_url
        if not url:
            raise ProviderMisconfigured("This HTTP provider has no URL configured.")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderMisconfigured(f"Not an HTTP URL: {url}")
        self.base_path = parts.path.rstrip("/")
        self.host, self.port, self.scheme = parts.hostname, parts.port, parts.scheme
        self.timeout = float(self.provider.config.get("timeout", 15))
        self.connection = None
        return self

    def _connection(self) -> http.client.HTTPConnection:
        if self.connection is None:
            factory = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self.connection = factory(self.host, self.port, timeout=self.timeout)
        return self.connection

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed is retried once
            try:
                connection = self._connection()
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (TimeoutError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def send(self, message: OutboxMessage) -> Result:
        try:
            status, body = self.post(message)
        except ProviderMisconfigured:
            raise
        except (http.client.HTTPException, OSError) as error:
            return transient(f"connection failed: {error}", broken_session=True)
        text = body.decode(errors="replace")[:500]
        if 200 <= status < 300:
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                data = {}
            return sent(f"{status}", provider_message_id=str(data.get("sid") or data.get("message_id") or data.get("name") or ""))
        if status == 429 or status >= 500:
            return transient(f"{status} {text}")
        try:
            code = int(json.loads(body).get("code", 0))
        except (ValueError, AttributeError, TypeError):
            code = 0
        return permanent(f"{status} {text}", hard_bounce=code in BAD_NUMBER_CODES)

    def post(self, message: OutboxMessage) -> tuple[int, bytes]:
        raise NotImplementedError

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class TwilioStyleSession(HTTPSession):
    """POST {url}/Accounts/{account}/Messages.json with From, To and Body (basic auth).

    A WhatsApp message queued with an approved template (messaging.whatsapp) goes as
    ContentSid + ContentVariables instead of Body; with "requires_template": true in the
    config, one without is refused here too (a campaign's fan-out does not pass through
    enqueue's check). When the provider has a webhook secret, StatusCallback points Twilio
    at our status webhook (MAILROOM_BASE_URL + its path), so delivered/failed come back;
    without one that webhook would refuse every callback, so none is asked for."""

    def send(self, message: OutboxMessage) -> Result:
        if message.channel == "whatsapp" and self.provider.config.get("requires_template") and not self._approved(message):
            return permanent("this WhatsApp provider requires an approved template and the message has none")
        return super().send(message)

    @staticmethod
    def _approved(message: OutboxMessage) -> dict | None:
        approved = message.metadata.get(WHATSAPP_TEMPLATE_KEY) if isinstance(message.metadata, dict) else None
        return approved if isinstance(approved, dict) and approved.get("sid") else None

    def post(self, message: OutboxMessage) -> tuple[int, bytes]:
        config = self.provider.config
        account, sender = config.get("account_sid", ""), config.get("from", "")
        if not account or not sender:
            raise ProviderMisconfigured("Set account_sid and from in the provider configuration.")
        prefix = "whatsapp:" if message.channel == "whatsapp" else ""
        fields = {"From": prefix + sender, "To": prefix + message.to_address}
        if message.channel == "whatsapp" and (approved := self._approved(message)):
            variables = {number: reveal(message, value) for number, value in (approved.get("variables") or {}).items()}
            fields |= {"ContentSid": approved["sid"], "ContentVariables": json.dumps(variables)}
        else:
            fields["Body"] = final_text(message)
        if callback := status_callback_url(self.provider):
            fields["StatusCallback"] = callback
        token = base64.b64encode(f"{account}:{secret(self.provider, 'token_secret')}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", f"{self.base_path}/Accounts/{account}/Messages.json", urlencode(fields).encode(), headers)


def status_callback_url(provider: Provider) -> str:
    """Where Twilio should report this provider's message statuses: our events webhook, at
    the public address (Settings → Sending, or MAILROOM_BASE_URL), the URL Twilio then signs. Empty when the
    provider has no webhook secret (the webhook would refuse every callback) or
    "status_callback": false."""
    if not provider.config.get("webhook_secret") or provider.config.get("status_callback") is False or not provider.pk:
        return ""
    return site.current().link(reverse("messaging:webhook-events", args=[provider.pk]))
