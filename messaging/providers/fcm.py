"""Push through Firebase Cloud Messaging's HTTP v1 API.

POST {url}/v1/projects/{project_id}/messages:send with
{"message": {"token", "notification": {"title", "body"}, "data": {str: str}}}, authorised by
an OAuth2 access token that google-auth mints from a service-account JSON (the named
secret `service_account_secret`). The token is cached per process and provider until it
expires, so a worker asks Google's token endpoint about once an hour, not once per batch.

Every device: one OutboxMessage per contact (reports count people, not phones), and at send
time the session sends it to every token the contact has then — one FCM request per token on
the batch's keep-alive connection. The message is `sent` when at least one device took it
(the first FCM message name is kept as its provider id); the tokens FCM calls dead are pruned
from the contact; when every token is dead the message fails as a hard bounce, "no live device
token". A message without a contact (a raw token as its address) goes to that token only.
"""

import functools
import hashlib
import http.client
import json
import logging
from typing import Any

from django.db import DatabaseError

from messaging.contacts import remove_push_tokens
from messaging.models import Contact, OutboxMessage
from messaging.providers.base import ProviderError, ProviderMisconfigured, Result, final_text, permanent, secret, sent, transient
from messaging.providers.http import HTTPSession

logger = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_URL = "https://fcm.googleapis.com"
DEAD_CODES = {"UNREGISTERED", "NOT_FOUND"}  # the app was uninstalled or the token expired
TRANSIENT_CODES = {"UNAVAILABLE", "INTERNAL", "QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"}

# (provider id, hash of its service-account JSON) → google-auth credentials holding the token.
_credentials: dict[tuple[int, str], Any] = {}


def forget_cached_tokens() -> None:
    """Drop every cached access token (tests; a rotated key is picked up by its new hash anyway)."""
    _credentials.clear()


class PushSession(HTTPSession):
    """FCM HTTP v1 (see the module docstring). Config: `service_account_secret` names the
    secret holding the service-account JSON; `project_id` defaults to the JSON's; `url`
    defaults to FCM's own (tests point it, and the JSON's token_uri, at local servers)."""

    default_url = FCM_URL

    def __enter__(self) -> "PushSession":
        super().__enter__()
        self.credentials = self._credentials()
        self.project_id = self.provider.config.get("project_id") or self.info.get("project_id", "")
        if not self.project_id:
            raise ProviderMisconfigured("Set project_id in the push provider's configuration or its service account.")
        return self

    def _credentials(self):
        from google.oauth2 import service_account

        name = self.provider.config.get("service_account_secret")
        if not name:
            raise ProviderMisconfigured("Set service_account_secret: the name of the secret holding the Firebase service-account JSON.")
        raw = secret(self.provider, "service_account_secret")
        try:
            self.info = json.loads(raw)
        except ValueError:
            raise ProviderMisconfigured(f"Secret {name} is not JSON: it must hold the Firebase service-account JSON.") from None
        key = (self.provider.pk, hashlib.sha256(raw.encode()).hexdigest())
        if key not in _credentials:
            try:
                _credentials[key] = service_account.Credentials.from_service_account_info(self.info, scopes=[SCOPE])
            except (ValueError, KeyError, TypeError) as error:
                raise ProviderMisconfigured(f"Secret {name} is not a usable service account: {error}") from None
        return _credentials[key]

    def _bearer(self) -> str:
        """A valid access token, minted again only when the cached one is about to expire."""
        from google.auth import exceptions
        from google.auth.transport.requests import Request

        if not self.credentials.valid:
            token_uri = getattr(self.credentials, "_token_uri", "")
            try:
                self.credentials.refresh(functools.partial(Request(), timeout=self.timeout))
            except exceptions.RefreshError as error:
                if error.retryable:
                    raise ProviderError(f"the token endpoint {token_uri} is failing: {error}") from None
                raise ProviderMisconfigured(f"the token endpoint {token_uri} refused the service account: {error}") from None
            except exceptions.TransportError as error:
                raise ProviderError(f"could not reach the token endpoint {token_uri} for an access token: {error}") from None
        return self.credentials.token

    def send(self, message: OutboxMessage) -> Result:
        tokens = self._tokens(message)
        if not tokens:
            return permanent("no live device token: the contact has no push token left")
        path = f"{self.base_path}/v1/projects/{self.project_id}/messages:send"
        notification = {"body": final_text(message)}
        if message.subject:
            notification["title"] = message.subject
        data = message.metadata.get("data") if isinstance(message.metadata, dict) else None
        data = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (data or {}).items()}  # v1 takes strings only
        accepted, dead, retry, refused = [], [], [], []
        broken = False
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._bearer()}"}  # before any device gets it
        for token in tokens:
            body = {"message": {"token": token, "notification": notification, **({"data": data} if data else {})}}
            try:
                status, answer = self.request("POST", path, json.dumps(body).encode(), headers)
            except (http.client.HTTPException, OSError) as error:  # the devices left wait for the retry
                retry.append(f"connection failed: {error}")
                broken = True
                break
            verdict, detail = classify(status, answer)
            if verdict == "dead":
                dead.append(token)
            else:
                {"sent": accepted, "transient": retry, "permanent": refused}[verdict].append(detail)
        if dead and message.contact_id:
            forget_push_tokens(contact_id=message.contact_id, tokens=dead, message_id=message.pk)
        summary = f"{len(accepted)} of {len(tokens)} devices" + (f", {len(dead)} dead token(s) removed" if dead else "")
        if accepted:
            return sent(summary, provider_message_id=accepted[0])
        if retry:
            return transient(f"{summary}; {retry[0]}", broken_session=broken)
        if dead and not refused:
            return permanent(f"no live device token ({summary})", hard_bounce=True)
        return permanent(f"{summary}; {refused[0]}")

    def _tokens(self, message: OutboxMessage) -> list[str]:
        """The contact's tokens now (one query per message, next to one HTTP request per
        device); a message without a contact goes to its own address."""
        if not message.contact_id:
            return [message.to_address] if message.to_address else []
        tokens = Contact.objects.filter(pk=message.contact_id).values_list("push_tokens", flat=True).first()
        return [t for t in dict.fromkeys(tokens or []) if isinstance(t, str) and t]


def classify(status: int, body: bytes) -> tuple[str, str]:
    """One FCM answer → ("sent", message name) | ("dead", why) | ("transient", why) |
    ("permanent", why). 401/403 mean our credentials or project are wrong: that stops the
    batch (ProviderMisconfigured) rather than pruning tokens that may be fine."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    if 200 <= status < 300:
        return "sent", str(data.get("name") or "")
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    code = str(error.get("status") or "")
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    codes = {code} | {str(d.get("errorCode")) for d in details if d.get("errorCode")}
    why = f"{status} {code} {error.get('message') or body.decode(errors='replace')[:300]}".strip()
    if status in (401, 403):
        raise ProviderMisconfigured(f"FCM refused our credentials for this project ({why}): check the service account and project_id.")
    if status == 429 or status >= 500 or codes & TRANSIENT_CODES:
        return "transient", why
    if codes & DEAD_CODES or ("INVALID_ARGUMENT" in codes and _about_the_token(error, details)):
        return "dead", why
    return "permanent", why


def _about_the_token(error: dict, details: list[dict]) -> bool:
    """INVALID_ARGUMENT is a dead token only when FCM says the token is what is wrong (a
    field violation on message.token, or its "not a valid FCM registration token"), not for
    a payload it refuses."""
    violations = [v for d in details for v in d.get("fieldViolations") or [] if isinstance(v, dict)]
    return any(v.get("field") == "message.token" for v in violations) or "registration token" in str(error.get("message", "")).lower()


def forget_push_tokens(*, contact_id: int, tokens: list[str], message_id: int | None = None) -> None:
    """Remove the tokens FCM called dead from the contact. Never raises: the message already
    reached the other devices, and a database hiccup here must not make it look unsent (the
    token is simply pruned on a later send)."""
    try:
        remove_push_tokens(contact_id=contact_id, tokens=tokens)
    except DatabaseError as error:
        logger.warning("message %s: could not remove %s dead push token(s): %s", message_id, len(tokens), error)
    else:
        logger.info("message %s: removed %s dead push token(s) from contact %s", message_id, len(tokens), contact_id)
