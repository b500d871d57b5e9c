"""Sign-in lockout, one rule for every way in: the console login form and the API's JWT
token endpoint both check passwords through Django's `authenticate()`, and the
authentication backend below counts failed sign-ins per username and per client IP
(MAILROOM_RATE_LIMITS "login-username" and "login-ip") and refuses while either is used up.

While locked, the password is not even checked, so guessing on goes nowhere; the console
shows a plain form error saying how long to wait, the API a 429 problem with Retry-After.
A successful sign-in clears the username's count (not the IP's: one office may share it
with an attacker's guesses).
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from unfold.forms import AuthenticationForm

from messaging.delivery.throttle import blocked, client_ip, forget_failures, record_failure


def sign_in_keys(*, request, username: str | None) -> list[tuple[str, str]]:
    ip = client_ip(request) if request is not None else "unknown"
    return [("login-username", (username or "").strip().lower()), ("login-ip", ip)]


def lockout_seconds(*, request, username: str | None) -> int | None:
    """How long this sign-in is refused for (the window of the lock in force), or None."""
    for scope, key in sign_in_keys(request=request, username=username):
        if blocked(scope=scope, key=key):
            return settings.MAILROOM_RATE_LIMITS[scope][1]
    return None


def locked_message(seconds: int) -> str:
    return _("Too many failed sign-in attempts. Wait %(minutes)s minutes, then try again.") % {"minutes": max(1, seconds // 60)}


class LockoutModelBackend(ModelBackend):
    """Django's ModelBackend behind the lockout: every password check counts (settings
    AUTHENTICATION_BACKENDS), whichever view asked for it."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        keys = sign_in_keys(request=request, username=username)
        if any(blocked(scope=scope, key=key) for scope, key in keys):
            raise PermissionDenied  # stops authenticate() before any backend checks the password
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            for scope, key in keys:
                record_failure(scope=scope, key=key)
        else:
            forget_failures(scope="login-username", key=keys[0][1])
        return user


class ThrottledLoginForm(AuthenticationForm):
    def clean(self):
        seconds = lockout_seconds(request=self.request, username=self.cleaned_data.get("username"))
        if seconds:
            raise ValidationError(locked_message(seconds), code="throttled")
        return super().clean()


class ThrottledTokenObtainPairSerializer(TokenObtainPairSerializer):
    """POST /api/v1/auth/token/: the same lockout, answered as a 429 problem."""

    def validate(self, attrs):
        seconds = lockout_seconds(request=self.context.get("request"), username=attrs.get(self.username_field))
        if seconds:
            raise Throttled(wait=seconds, detail=locked_message(seconds))
        return super().validate(attrs)
