"""The console, one module per area. Importing them registers the ModelAdmins."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from messaging.admin import api_keys, audience, content, delivery, imports, jobs, webhooks  # noqa: F401
from messaging.signup import admin as signup_admin  # noqa: F401

admin.site.site_header = admin.site.site_title = "Mailroom"
admin.site.index_title = _("Dashboard")
