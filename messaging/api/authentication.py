"""API key authentication: `Authorization: Api-Key <prefix>.<secret>`.

A valid key authenticates as its service user (`request.user`, in the key's role group)
with the key itself as `request.auth`; an unknown, malformed or revoked key is a 401."""

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from messaging.api_keys import ApiKeyRejected, key_for_token
from messaging.models import ApiKey

KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = KEYWORD

    def authenticate(self, request: Request) -> tuple | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None  # not ours: another authentication class may take it
        if len(parts) != 2:
            raise AuthenticationFailed(_("Send the key as “Authorization: Api-Key <prefix>.<secret>”."), code="api_key_malformed")
        try:
            key: ApiKey = key_for_token(parts[1].decode("ascii", errors="replace"))
        except ApiKeyRejected as error:
            raise AuthenticationFailed(str(error), code=error.code) from error
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "messaging.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <prefix>.<secret>` — keys are created in the console (Settings → API keys).",
        }
