"""The console login, throttled: repeated failed sign-ins lock out the username and the
client IP for a while (MAILROOM_RATE_LIMITS "login-username" and "login-ip").

While locked, the password is not even checked, so guessing on goes nowhere; the person
sees a plain form error saying how long to wait. A successful sign-in clears the
username's count (not the IP's: one office may share it with an attacker's guesses).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from unfold.forms import AuthenticationForm

from messaging.throttle import blocked, client_ip, forget_failures, record_failure


class ThrottledLoginForm(AuthenticationForm):
    def _keys(self) -> list[tuple[str, str]]:
        username = (self.cleaned_data.get("username") or "").strip().lower()
        ip = client_ip(self.request) if self.request is not None else "unknown"
        return [("login-username", username), ("login-ip", ip)]

    def clean(self):
        keys = self._keys()
        for scope, key in keys:
            if blocked(scope=scope, key=key):
                minutes = max(1, settings.MAILROOM_RATE_LIMITS[scope][1] // 60)
                raise ValidationError(
                    _("Too many failed sign-in attempts. Wait %(minutes)s minutes, then try again."),
                    code="throttled",
                    params={"minutes": minutes},
                )
        try:
            cleaned = super().clean()
        except ValidationError:
            for scope, key in keys:
                record_failure(scope=scope, key=key)
            raise
        forget_failures(scope="login-username", key=keys[0][1])
        return cleaned
