"""Signals sign-up forms send, for higher apps (marketing automations: "form confirmed")."""

from django.dispatch import Signal

# Sent after commit once a visitor's sign-up is confirmed (double opt-in: the link was
# opened; single opt-in: the form was posted). Arguments: contact, form.
signup_confirmed = Signal()
