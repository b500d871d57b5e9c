"""The marketing area of the console. Importing the modules registers the ModelAdmins."""

from marketing.admin import automations, campaigns, events, segments  # noqa: F401
