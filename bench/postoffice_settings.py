"""django-post-office as its README documents it for Django >= 6.1 (MAILERS), for
bench/send_throughput.py only: Mailroom's settings plus the app, queueing through
post_office and delivering through Django's SMTP backend to the benchmark's sink.

The sink's port comes from BENCH_SMTP_PORT and the database from MAILROOM_SQLITE_PATH
(read by config.settings), both set by the benchmark for its child process.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "post_office"]

MAILERS = {
    # Where the application queues: post_office stores an Email row.
    "default": {"BACKEND": "post_office.EmailBackend"},
    # What post_office delivers through.
    "smtp": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": int(os.environ.get("BENCH_SMTP_PORT", "25"))},
    },
}
POST_OFFICE = {
    "DEFAULT_MAILER": "smtp",
    # "medium" (the default) queues; only "now" would send while creating the email.
    "DEFAULT_PRIORITY": "medium",
}
DEFAULT_FROM_EMAIL = "Mailroom <hello@mailroom.test>"
