"""Mailroom settings. The environment is read here, once; nothing else reads os.environ.

Every knob has a safe default so `make run` works with nothing configured:
SQLite in WAL mode, DEBUG off, the sandbox provider.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.templatetags.static import static
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from config.sentry import init_sentry

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG") or env_bool("MAILROOM_DEBUG")
TESTING = "pytest" in sys.modules or env_bool("MAILROOM_TESTING")

# SECRET_KEY signs every public link, session and token. From the environment, else from
# var/secret_key (`make run` writes a random one there on first start). Without either,
# development and test runs generate one into var/secret_key (so subprocesses and the
# next start share it); production refuses to start rather than sign with a key anyone
# can read in the source, or with a key made up on this host alone (another web server
# or a redeployed container would make another, breaking every link already sent).
SECRET_KEY_FILE = BASE_DIR / "var" / "secret_key"
# `manage.py ensure_admin` (run by `make run`) keeps the console password it made here (0600).
ADMIN_PASSWORD_FILE = BASE_DIR / "var" / "admin_password"
# Published in the source, so never accepted in production (messaging/checks.py).
INSECURE_DEV_KEY = "mailroom-insecure-development-key-set-SECRET_KEY-in-production"


def _read_or_make_secret_key() -> str:
    if key := os.environ.get("SECRET_KEY", "").strip():
        return key
    if SECRET_KEY_FILE.exists() and (key := SECRET_KEY_FILE.read_text().strip()):
        return key
    if not (DEBUG or TESTING):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"No secret key: SECRET_KEY is not set and {SECRET_KEY_FILE} does not exist (var/secret_key). "
            "Set SECRET_KEY in the environment (the same value on every server), or run `make setup` once to write "
            "var/secret_key. Mailroom does not start in production with a built-in key."
        )
    import secrets

    SECRET_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return SECRET_KEY_FILE.read_text().strip()
    key = secrets.token_urlsafe(50)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


SECRET_KEY = _read_or_make_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")


def _trusted_proxies(value: str) -> int | list[str]:
    value = value.strip()
    if not value:
        return 0
    if value.isdigit():
        return int(value)
    import ipaddress

    networks = [item.strip() for item in value.split(",") if item.strip()]
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # a typo fails the start, not a request
    return networks


# Who the client is (rate limits, lockouts, consent records): REMOTE_ADDR, unless Mailroom
# runs behind reverse proxies that append the address they saw to X-Forwarded-For. Then
# MAILROOM_TRUSTED_PROXIES is either how many proxies are in front ("1": the client is the
# last address in the header) or the proxies' addresses/networks ("10.0.0.0/8,192.0.2.7":
# trusted hops are skipped from the right, and only when the peer is one of them).
# X-Forwarded-For is ignored when it is unset. See messaging.delivery.throttle.client_ip.
MAILROOM_TRUSTED_PROXIES = _trusted_proxies(os.environ.get("MAILROOM_TRUSTED_PROXIES", ""))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# Who sends and what the product calls itself: set in the console (Settings → Sending),
# stored in the database. Each variable below, when set, overrides its console field (the
# page shows which); empty means "not set". The defaults and the one accessor every reader
# uses live in messaging/site.py (messaging.site.current()).
MAILROOM_BASE_URL = os.environ.get("MAILROOM_BASE_URL", "")  # where Mailroom is reached: printed and emailed links
MAILROOM_SITE_NAME = os.environ.get("MAILROOM_SITE_NAME", "")  # {{ site_name }} in templates
MAILROOM_SITE_URL = os.environ.get("MAILROOM_SITE_URL", "")  # {{ site_url }} (else the base URL)
MAILROOM_SENDER_ADDRESS = os.environ.get("MAILROOM_SENDER_ADDRESS", "")  # the postal address marketing mail carries
MAILROOM_DEFAULT_FROM = os.environ.get("MAILROOM_DEFAULT_FROM", "")  # "Name <address>" of every message without its own
MAILROOM_REPLY_TO = os.environ.get("MAILROOM_REPLY_TO", "")
MAILROOM_DEFAULT_REGION = os.environ.get("MAILROOM_DEFAULT_REGION", "FR")
# The currency of figures that carry none of their own (attributed revenue in reports).
MAILROOM_CURRENCY = os.environ.get("MAILROOM_CURRENCY", "EUR").strip().upper() or "EUR"
# Which provider sends when none is configured: the sandbox stores every message in the
# database so a new install sends nothing anywhere by accident. "sandbox" or "none" (a
# channel without a configured provider waits); anything else fails `check` at startup
# (messaging.E001): real providers are configured in the console.
MAILROOM_DEFAULT_PROVIDER = os.environ.get("MAILROOM_DEFAULT_PROVIDER", "")
MAILROOM_MESSAGE_ID_DOMAIN = os.environ.get("MAILROOM_MESSAGE_ID_DOMAIN", "")  # empty: the From address's domain
# Provider credentials: a provider's config names a secret ("password_secret": "SMTP"),
# the value comes from the environment variable MAILROOM_SECRET_SMTP.
MAILROOM_SECRETS = {k.removeprefix("MAILROOM_SECRET_"): v for k, v in os.environ.items() if k.startswith("MAILROOM_SECRET_")}
# Hosts an email inbox may log in to over IMAP without TLS besides loopback (comma-separated),
# e.g. a mail server on a private network: the password crosses it in clear.
MAILROOM_IMAP_PLAINTEXT_HOSTS = [host.lower() for host in env_list("MAILROOM_IMAP_PLAINTEXT_HOSTS", "")]
# ESP webhooks through django-anymail, at /webhooks/anymail/<esp>/tracking/ (and /inbound/).
# ANYMAIL_WEBHOOK_SECRET is the "user:password" the ESP sends as HTTP basic auth (several,
# comma-separated, while rotating); without it (or an ESP's own signing key) they are refused.
# Mailgun signs with its webhook signing key; SendGrid may sign (its verification key).
# Empty values are left out: an empty signing key would let anyone sign.
ANYMAIL = {
    name: value
    for name, value in {
        "WEBHOOK_SECRET": env_list("ANYMAIL_WEBHOOK_SECRET", ""),
        "MAILGUN_WEBHOOK_SIGNING_KEY": os.environ.get("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY", ""),
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": os.environ.get("ANYMAIL_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", ""),
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": env_bool("ANYMAIL_AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS", True),
    }.items()
    if value not in ("", [])
}
# Delivery: 1 try + 3 retries after 60/120/240 s (±20 % jitter). Keys: a priority number
# (0 transactional … 8 bulk) or "default".
MAILROOM_MAX_ATTEMPTS = int(os.environ.get("MAILROOM_MAX_ATTEMPTS", "4"))
MAILROOM_RETRY_BACKOFF = {"default": [60, 120, 240], 0: [30, 60, 120]}
# MAILROOM_RETRY_BACKOFF_SECONDS="1,1,1" replaces the steps of every priority (the
# reliability tests use it so a cluster subprocess retries within seconds).
if backoff_steps := env_list("MAILROOM_RETRY_BACKOFF_SECONDS", ""):
    MAILROOM_RETRY_BACKOFF = {"default": [float(step) for step in backoff_steps]}
MAILROOM_LEASE_SECONDS = int(os.environ.get("MAILROOM_LEASE_SECONDS", "120"))
MAILROOM_FAILOVER_AFTER = int(os.environ.get("MAILROOM_FAILOVER_AFTER", "5"))
# An inbound message still "received" this long after arrival lost its handler to a crash:
# the five-minute sweep (messaging.tasks.process_stranded_inbound) runs it then.
MAILROOM_INBOUND_STRANDED_MINUTES = int(os.environ.get("MAILROOM_INBOUND_STRANDED_MINUTES", "10"))
MAILROOM_PROVIDER_REST_SECONDS = int(os.environ.get("MAILROOM_PROVIDER_REST_SECONDS", "60"))
MAILROOM_SEND_BATCH = int(os.environ.get("MAILROOM_SEND_BATCH", "500"))
# How long a worker keeps retrying to record a sent batch while the database is down
# (under the task timeout below): past it, the batch's leases expire and it is sent again.
MAILROOM_RECORD_RETRY_SECONDS = int(os.environ.get("MAILROOM_RECORD_RETRY_SECONDS", "180"))
MAILROOM_ATTEMPT_RETENTION_DAYS = int(os.environ.get("MAILROOM_ATTEMPT_RETENTION_DAYS", "90"))
# Retention (messaging.delivery.retention, the nightly "prune old messages" job): finished
# messages older than MAILROOM_BODY_RETENTION_DAYS lose their bodies, headers and files (the
# row, subject and status stay); delivery events older than MAILROOM_EVENT_RETENTION_DAYS are
# deleted once the analytics rollups have counted them. 0 keeps them forever. Each batch of
# MAILROOM_RETENTION_BATCH rows is its own short transaction; a run stops after
# MAILROOM_RETENTION_TIME_BUDGET_SECONDS (under the cluster timeout) and the next one carries on.
MAILROOM_BODY_RETENTION_DAYS = int(os.environ.get("MAILROOM_BODY_RETENTION_DAYS", "180"))
MAILROOM_EVENT_RETENTION_DAYS = int(os.environ.get("MAILROOM_EVENT_RETENTION_DAYS", "400"))
MAILROOM_RETENTION_BATCH = int(os.environ.get("MAILROOM_RETENTION_BATCH", "2000"))
MAILROOM_RETENTION_TIME_BUDGET_SECONDS = float(os.environ.get("MAILROOM_RETENTION_TIME_BUDGET_SECONDS", "240"))
# Outbound webhooks (messaging.webhooks): attempts per delivery (backoff 30 s·2^n, capped),
# consecutive failed attempts that disable an endpoint, the request timeout, and whether
# loopback/private/link-local addresses may be used (off in production: SSRF).
MAILROOM_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("MAILROOM_WEBHOOK_MAX_ATTEMPTS", "8"))
MAILROOM_WEBHOOK_BACKOFF_CAP_SECONDS = int(os.environ.get("MAILROOM_WEBHOOK_BACKOFF_CAP_SECONDS", "3600"))
MAILROOM_WEBHOOK_DISABLE_AFTER = int(os.environ.get("MAILROOM_WEBHOOK_DISABLE_AFTER", "20"))
MAILROOM_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("MAILROOM_WEBHOOK_TIMEOUT_SECONDS", "10"))
MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# Enqueue kicks a drain task on the cluster after commit (the minute schedule is the net).
MAILROOM_KICK_CLUSTER = env_bool("MAILROOM_KICK_CLUSTER", True)
# What a template variable with no value renders as ("" keeps filters like `default` working).
MAILROOM_MISSING_VARIABLE_DEFAULT = os.environ.get("MAILROOM_MISSING_VARIABLE_DEFAULT", "")
# The work one message's render may do (editor preview, save, enqueue, send): loop steps
# (items × nodes in the loop's body, summed over every loop), characters written by loops,
# and a wall-clock backstop checked between loop iterations. Past any, the render stops
# with a "too much work" error instead of holding a web or cluster worker.
MAILROOM_RENDER_MAX_STEPS = int(os.environ.get("MAILROOM_RENDER_MAX_STEPS", "20000"))
MAILROOM_RENDER_MAX_OUTPUT = int(os.environ.get("MAILROOM_RENDER_MAX_OUTPUT", "2000000"))
MAILROOM_RENDER_MAX_SECONDS = float(os.environ.get("MAILROOM_RENDER_MAX_SECONDS", "1"))
# Preference and view-in-browser links stop working after this many days (unsubscribe
# links never do).
MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS = int(os.environ.get("MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS", "365"))
# An open or click this soon after sending (per its token's timestamp) is a prefetch.
MAILROOM_PREFETCH_SECONDS = float(os.environ.get("MAILROOM_PREFETCH_SECONDS", "2"))
# Email verification and password-reset links: single use, and short-lived.
MAILROOM_VERIFY_LINK_MAX_AGE_HOURS = int(os.environ.get("MAILROOM_VERIFY_LINK_MAX_AGE_HOURS", "48"))
MAILROOM_RESET_LINK_MAX_AGE_MINUTES = int(os.environ.get("MAILROOM_RESET_LINK_MAX_AGE_MINUTES", "60"))
# Rate limits of the public endpoints, {scope: (hits, seconds)}; 0 hits turns one off.
# Per client IP unless the scope says otherwise; counted in the cache (see messaging.delivery.throttle).
# Tracking is generous: image proxies and office networks put many people behind one IP.
MAILROOM_RATE_LIMITS = {
    "tracking": (int(os.environ.get("MAILROOM_TRACKING_RATE_LIMIT", "1200")), 60),
    "pages": (int(os.environ.get("MAILROOM_PAGES_RATE_LIMIT", "60")), 60),
    "verification-address": (3, 3600),
    "verification-ip": (20, 3600),
    "reset-address": (3, 3600),
    "reset-ip": (10, 3600),
    # Console sign-in: failed attempts per username and per client IP before a lockout
    # that lasts the window (see config/login.py).
    "login-username": (int(os.environ.get("MAILROOM_LOGIN_MAX_FAILURES", "5")), 900),
    "login-ip": (int(os.environ.get("MAILROOM_LOGIN_MAX_FAILURES_IP", "20")), 900),
    # Anonymous referral sign-ups (POST /r/<code>/) per client IP and hour.
    "referral-signup": (int(os.environ.get("MAILROOM_REFERRAL_SIGNUP_RATE_LIMIT", "10")), 3600),
    # Sign-up form posts (POST /f/<slug>/) per client IP and per address, each hour.
    "signup-ip": (int(os.environ.get("MAILROOM_SIGNUP_IP_RATE_LIMIT", "20")), 3600),
    "signup-address": (int(os.environ.get("MAILROOM_SIGNUP_ADDRESS_RATE_LIMIT", "5")), 3600),
}
# Sign-up forms: unconfirmed sign-ups are deleted after this many days; no second
# confirmation email to the same address within the resend window.
MAILROOM_SIGNUP_EXPIRY_DAYS = int(os.environ.get("MAILROOM_SIGNUP_EXPIRY_DAYS", "7"))
MAILROOM_SIGNUP_RESEND_MINUTES = int(os.environ.get("MAILROOM_SIGNUP_RESEND_MINUTES", "10"))
MAILROOM_IMPORT_BATCH_SIZE = int(os.environ.get("MAILROOM_IMPORT_BATCH_SIZE", "2000"))
# Console CSV imports: larger files than this are refused with a message (20 MB: about
# 400,000 rows); files over the inline size or row count are imported by a worker with a
# progress page, smaller ones in the request (both through messaging.import_jobs).
MAILROOM_IMPORT_MAX_BYTES = int(os.environ.get("MAILROOM_IMPORT_MAX_BYTES", str(20 * 1024 * 1024)))
MAILROOM_IMPORT_INLINE_MAX_BYTES = int(os.environ.get("MAILROOM_IMPORT_INLINE_MAX_BYTES", str(1024 * 1024)))
MAILROOM_IMPORT_INLINE_MAX_ROWS = int(os.environ.get("MAILROOM_IMPORT_INLINE_MAX_ROWS", "2000"))
# A worker importing a file renews its claim at least this often; a claim left to run out
# (the worker was killed) lets the "recover import jobs" schedule run the job again, at
# most MAILROOM_IMPORT_MAX_ATTEMPTS times before it is marked failed.
MAILROOM_IMPORT_LEASE_SECONDS = int(os.environ.get("MAILROOM_IMPORT_LEASE_SECONDS", "60"))
MAILROOM_IMPORT_MAX_ATTEMPTS = int(os.environ.get("MAILROOM_IMPORT_MAX_ATTEMPTS", "3"))
# REST API throttles (requests per s/min/hour/day). A user's requests and an API key's are
# counted apart; a key may carry its own rate (set in the console). Anonymous requests
# (the token endpoint, a bad key) are counted per IP address.
MAILROOM_API_USER_RATE = os.environ.get("MAILROOM_API_USER_RATE", "600/min")
MAILROOM_API_KEY_RATE = os.environ.get("MAILROOM_API_KEY_RATE", "1200/min")
MAILROOM_API_ANON_RATE = os.environ.get("MAILROOM_API_ANON_RATE", "60/min")
MAILROOM_API_PAGE_SIZE = int(os.environ.get("MAILROOM_API_PAGE_SIZE", "50"))
MAILROOM_API_MAX_PAGE_SIZE = int(os.environ.get("MAILROOM_API_MAX_PAGE_SIZE", "500"))
MAILROOM_JWT_ACCESS_MINUTES = int(os.environ.get("MAILROOM_JWT_ACCESS_MINUTES", "15"))
MAILROOM_JWT_REFRESH_HOURS = int(os.environ.get("MAILROOM_JWT_REFRESH_HOURS", "24"))
# Gift-card redemption throttling: bad codes (unknown, expired, disabled) from one client
# (an API key, a user, or the customer a caller names; the IP only when none is known) lock
# that client out for the lockout period, and as many refused attempts on one card lock
# that card; attempts per minute are capped per client and per card.
MAILROOM_GIFT_CARD_MAX_BAD_CODES = int(os.environ.get("MAILROOM_GIFT_CARD_MAX_BAD_CODES", "5"))
MAILROOM_GIFT_CARD_LOCKOUT_MINUTES = int(os.environ.get("MAILROOM_GIFT_CARD_LOCKOUT_MINUTES", "15"))
MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CLIENT = int(
    os.environ.get("MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CLIENT", os.environ.get("MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_IP", "30"))
)
MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CARD = int(os.environ.get("MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CARD", "10"))
# Campaigns: at most N marketing messages per contact in D days, across campaigns.
MAILROOM_FREQUENCY_CAP = int(os.environ.get("MAILROOM_FREQUENCY_CAP", "3"))
MAILROOM_FREQUENCY_CAP_DAYS = int(os.environ.get("MAILROOM_FREQUENCY_CAP_DAYS", "7"))
# Guardrails (each campaign sets its complaint / hard-bounce limits) judge a rate only once
# this many messages were sent, so one early complaint among 3 sends pauses nothing.
MAILROOM_GUARDRAIL_MIN_SENT = int(os.environ.get("MAILROOM_GUARDRAIL_MIN_SENT", "20"))
# Fan-out: rows per transaction (a crash resumes at the next chunk; nothing is duplicated).
MAILROOM_FANOUT_CHUNK = int(os.environ.get("MAILROOM_FANOUT_CHUNK", "20000"))
# Threads creating a campaign's messages side by side (PostgreSQL only).
MAILROOM_FANOUT_WORKERS = int(os.environ.get("MAILROOM_FANOUT_WORKERS", "2"))

# --- Observability (README, "Observability"; the values are checked by mailroom.E010-E015) ---
# /metrics (Prometheus) exists only when this token is set: scrapers send it as
# "Authorization: Bearer <token>"; a signed-in Ops or Admin user may open it too.
MAILROOM_METRICS_TOKEN = os.environ.get("MAILROOM_METRICS_TOKEN", "").strip()
# Console notices for Ops and Admin: a due message waiting longer than this many minutes,
# or more than this many messages due (0 turns either off); no cluster heartbeat for this
# many seconds (it runs every minute). Their figures are cached per process this long.
MAILROOM_BACKLOG_ALERT_MINUTES = int(os.environ.get("MAILROOM_BACKLOG_ALERT_MINUTES", "15"))
MAILROOM_BACKLOG_ALERT_COUNT = int(os.environ.get("MAILROOM_BACKLOG_ALERT_COUNT", "100000"))
MAILROOM_HEARTBEAT_ALERT_SECONDS = int(os.environ.get("MAILROOM_HEARTBEAT_ALERT_SECONDS", "180"))
MAILROOM_NOTICES_CACHE_SECONDS = int(os.environ.get("MAILROOM_NOTICES_CACHE_SECONDS", "10"))
# Error reporting: Sentry, only with a DSN. No personal data (no user, cookie or body, and
# addresses and tokens scrubbed from every event: config/sentry.py); no tracing unless a
# sample rate is set. Web processes and the cluster (failed tasks) report alike.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "").strip()
SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT", "").strip() or ("development" if DEBUG else "production")
SENTRY_RELEASE = os.environ.get("SENTRY_RELEASE", "").strip() or None
SENTRY_TRACES_SAMPLE_RATE = float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0"))
if SENTRY_DSN:
    init_sentry(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=SENTRY_RELEASE, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_q",
    "import_export",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "django_tables2",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "messaging",
    "marketing",
    "growth",
    "accounts",  # last: the role table names every app's permissions
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "libraries": {"console": "config.console_tags"},
        },
    },
]

# --- Database ---------------------------------------------------------------------
# SQLite is the embedded default: WAL so readers never block the writer, IMMEDIATE
# transactions so two writers queue on the busy timeout instead of failing with
# "database is locked" when one upgrades a read lock. The WAL is checkpointed every
# 10,000 pages (40 MB) rather than 1,000: a sent message rewrites its row twice (claim,
# outcome) and the hot index pages many times over, and a page is copied once per
# checkpoint however often it changed (5,000 sends: 11,000 fewer reads and writes, 12
# fsyncs instead of 44; strace -c on bench/_profile_send.py).
SQLITE_PATH = Path(os.environ.get("MAILROOM_SQLITE_PATH", BASE_DIR / "db.sqlite3"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    # Persistent connections here too (one per web thread): opening one costs more than a
    # tracking hit (connect + the PRAGMAs below), and every request paid it.
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": SQLITE_PATH, "CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "config.sqlite3"  # Django's, reading datetimes back cheaper (see there)
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;PRAGMA temp_store=MEMORY;PRAGMA cache_size=-64000;PRAGMA mmap_size=134217728;PRAGMA wal_autocheckpoint=10000"
        ),
    }
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("MAILROOM_TEST_SQLITE_PATH", BASE_DIR / "var" / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: rate limits and lockouts are counted here, so it is shared by every worker --
# The database by default (the table is created by `migrate`, see messaging.wiring); Redis
# when CACHE_URL is set (redis:// or rediss://; needs redis-py: `pip install redis`).
# "local" is per process: only the tracking flood guard counts there (a hit stays one
# INSERT), and it is the shared Redis too when CACHE_URL is set.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    from importlib.util import find_spec

    from django.core.exceptions import ImproperlyConfigured

    if not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("CACHE_URL must be a redis://, rediss:// or unix:// URL (or unset for the database cache).")
    if find_spec("redis") is None:
        raise ImproperlyConfigured("CACHE_URL is set: install redis-py (`pip install redis`) to use Redis as the cache.")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL, "KEY_PREFIX": "mailroom"}}
    CACHES["local"] = CACHES["default"]
else:
    CACHES = {
        # Entries past MAX_ENTRIES are culled (expired first): high enough that a flood of
        # keys cannot push live counters out.
        "default": {"BACKEND": "config.cache.DatabaseCache", "LOCATION": "mailroom_cache", "OPTIONS": {"MAX_ENTRIES": 200_000}},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mailroom-local"},
    }

# Every password check goes through the sign-in lockout (config/login.py).
AUTHENTICATION_BACKENDS = ["config.login.LockoutModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- Internationalisation -----------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
# locale/ holds our strings; locale_vendor/ the French for strings Unfold shows (it ships
# no translations of its own).
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_vendor"]
TIME_ZONE = os.environ.get("MAILROOM_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (served by the app; no CDN) -------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "config.staticfinders.PlotlyFinder",  # vendor/plotly.min.js, from the plotly package
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
    # Email attachments (messaging.attachments): local files under var/attachments unless
    # MAILROOM_ATTACHMENT_STORAGE names another alias (any django-storages backend).
    "mailroom_attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": os.environ.get("MAILROOM_ATTACHMENT_DIR", str(BASE_DIR / "var" / "attachments"))},
    },
}
MAILROOM_ATTACHMENT_STORAGE = os.environ.get("MAILROOM_ATTACHMENT_STORAGE", "mailroom_attachments")
# Limits on what a message may carry: per file and per message, in bytes.
MAILROOM_ATTACHMENT_MAX_FILE_BYTES = int(os.environ.get("MAILROOM_ATTACHMENT_MAX_FILE_BYTES", str(10 * 1024 * 1024)))
MAILROOM_ATTACHMENT_MAX_MESSAGE_BYTES = int(os.environ.get("MAILROOM_ATTACHMENT_MAX_MESSAGE_BYTES", str(20 * 1024 * 1024)))
# The content types an attachment may declare (a prefix ending in "/" allows the family).
MAILROOM_ATTACHMENT_TYPES = env_list(
    "MAILROOM_ATTACHMENT_TYPES",
    "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,text/calendar,application/zip,"
    "application/json,application/vnd.openxmlformats-officedocument.wordprocessingml.document,"
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,application/msword,application/vnd.ms-excel,"
    "application/octet-stream",
)
# The drop-in Django email backend (messaging.backend.EmailBackend): the topic its messages go under.
MAILROOM_BACKEND_TOPIC = os.environ.get("MAILROOM_BACKEND_TOPIC", "transactional")

# --- Security ----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "SAMEORIGIN"
HTTPS = env_bool("MAILROOM_HTTPS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("MAILROOM_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS and env_bool("MAILROOM_HSTS_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = HTTPS and env_bool("MAILROOM_HSTS_PRELOAD", True)
# The console opens related-object popups as iframes of itself (see UNFOLD-NOTES), so
# frames stay SAMEORIGIN rather than DENY; frame-ancestors 'self' in the CSP says the same.
SILENCED_SYSTEM_CHECKS = ["security.W019"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None

# Unfold's templates carry no nonces and Alpine needs 'unsafe-eval'; inside the console
# the CSP is defence in depth (see shared/UNFOLD-NOTES.md). No nonce in style-src on
# purpose: a nonce there makes browsers ignore 'unsafe-inline'.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE, CSP.UNSAFE_EVAL],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-src": [CSP.SELF],
    "frame-ancestors": [CSP.SELF],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"

# --- django-q2: the ORM broker, explicitly (without "orm" it silently uses Redis) -----
Q_CLUSTER = {
    "name": "mailroom",
    "orm": "default",
    "workers": int(os.environ.get("MAILROOM_Q_WORKERS", "2")),
    "timeout": 300,
    "retry": 360,  # must exceed timeout, or a slow task runs twice
    "max_attempts": 3,
    "catch_up": False,  # after downtime run a schedule once, not once per missed slot
    "poll": 0.5,
    "save_limit": 1000,
    "ack_failures": True,
    "label": _("Task queue"),
}

# `manage.py run_cluster` (the Procfile's cluster): on SIGTERM/SIGINT, or when the process
# that started it dies, the batch in progress gets this long to finish before the workers
# are killed (their lease brings the messages back). Under 10 s, with the parent check.
MAILROOM_CLUSTER_STOP_SECONDS = float(os.environ.get("MAILROOM_CLUSTER_STOP_SECONDS", "7"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "messaging": {"level": os.environ.get("MAILROOM_LOG_LEVEL", "INFO")},
        "marketing": {"level": os.environ.get("MAILROOM_LOG_LEVEL", "INFO")},
        "growth": {"level": os.environ.get("MAILROOM_LOG_LEVEL", "INFO")},
    },
}

# --- REST API (/api/v1/, see config/api.py) ---------------------------------------------
REST_FRAMEWORK = {
    # JWT first: its WWW-Authenticate header is the one a 401 carries.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "messaging.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",  # the docs pages, from the console
    ],
    "DEFAULT_PERMISSION_CLASSES": ["messaging.api.permissions.HasCapability"],
    "DEFAULT_THROTTLE_CLASSES": ["messaging.api.throttles.PrincipalRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "messaging.api.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["messaging.api.renderers.SafeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["messaging.api.parsers.StorableJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "messaging.api.schema.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "messaging.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=MAILROOM_JWT_ACCESS_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=MAILROOM_JWT_REFRESH_HOURS),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": True,
    "CHECK_REVOKE_TOKEN": True,  # changing a password ends the tokens issued before
    "TOKEN_OBTAIN_SERIALIZER": "config.login.ThrottledTokenObtainPairSerializer",  # the console's lockout
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mailroom API",
    "DESCRIPTION": (
        "Contacts, consent, templates and the outbox of Mailroom. Authenticate with a JWT "
        "(`POST /api/v1/auth/token/`, then `Authorization: Bearer <access>`) or an API key "
        "created in the console (`Authorization: Api-Key <prefix>.<secret>`). Errors are "
        "RFC 9457 problem details (`application/problem+json`)."
    ),
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our static files (drf-spectacular-sidecar): no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "messaging.models.contacts.Channel",
        "MessageStatusEnum": "messaging.models.delivery.OutboxMessage.Status",
        "SubscriptionStatusEnum": "messaging.models.consent.Subscription.Status",
        "OrderStatusEnum": "marketing.models.events.Order.Status",
        "SegmentKindEnum": "marketing.models.segments.Segment.Kind",
        "AutomationStepKindEnum": "marketing.models.automations.AutomationStep.Kind",
        "AutomationRunStatusEnum": "marketing.models.automations.AutomationRun.Status",
        "AutomationStateEnum": "marketing.models.automations.Automation.State",
        "CampaignChannelEnum": "marketing.models.campaigns.Campaign.CHANNELS",
        "CampaignStateEnum": "marketing.models.campaigns.Campaign.State",
        "LoyaltyTransactionKindEnum": "growth.models.loyalty.LoyaltyTransaction.Kind",
        "GiftCardTransactionKindEnum": "growth.models.giftcards.GiftCardTransaction.Kind",
    },
}

# --- Console (Unfold) ----------------------------------------------------------------
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False  # the console import also lands in the admin log

UNFOLD = {
    "SITE_TITLE": "Mailroom",
    "SITE_HEADER": "Mailroom",
    "SITE_SUBHEADER": _("Marketing & customer messaging"),
    "SITE_SYMBOL": "mail",
    "SITE_FAVICONS": [
        {"rel": "icon", "sizes": "any", "type": "image/svg+xml", "href": lambda request: static("mailroom/favicon.svg")},
        {"rel": "icon", "sizes": "16x16 32x32 48x48", "type": "image/x-icon", "href": lambda request: static("mailroom/favicon.ico")},
    ],
    "SITE_URL": "/admin/",
    "SHOW_LANGUAGES": True,
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "ENVIRONMENT": "config.console.environment_badge",
    "DASHBOARD_CALLBACK": "config.console.dashboard_callback",
    "STYLES": [lambda request: static("mailroom/console.css")],
    "LOGIN": {"form": "config.login.ThrottledLoginForm"},
    "SITE_VIEWS": [
        ("settings/sending/", "site_settings", "messaging.views.site_settings.SettingsView"),
        ("growth/customers/", "growth_customers", "growth.admin.pages.CustomerLookupView"),
        ("growth/customers/<int:pk>/", "growth_contact", "growth.admin.pages.ContactGrowthView"),
        ("growth/report/", "growth_report", "growth.admin.pages.GrowthReportView"),
        ("analytics/", "analytics", "marketing.views.analytics.AnalyticsView"),
        ("analytics/charts/<slug:name>/", "analytics_chart", "marketing.views.analytics.ChartView"),
        ("analytics/export/<slug:table>/", "analytics_export", "marketing.views.analytics.ExportView"),
        ("analytics/campaigns/<str:object_id>/", "analytics_campaign", "marketing.views.analytics.CampaignReportView"),
        ("analytics/automations/<str:object_id>/", "analytics_automation", "marketing.views.analytics.AutomationReportView"),
    ],
    "COLORS": {
        "primary": {
            "50": "oklch(97.7% .013 236.62)",
            "100": "oklch(95.1% .026 236.824)",
            "200": "oklch(90.1% .058 230.902)",
            "300": "oklch(82.8% .111 230.318)",
            "400": "oklch(74.6% .16 232.661)",
            "500": "oklch(68.5% .169 237.323)",
            # One step darker than Tailwind's sky from 600 on: white text on bg-primary-600
            # (every button) and primary-600 links on white need 4.5:1 (sky-600 gives 4.1:1).
            "600": "oklch(50% .134 242.749)",
            "700": "oklch(44.3% .11 240.79)",
            "800": "oklch(39.1% .09 240.876)",
            "900": "oklch(34% .078 241.5)",
            "950": "oklch(29.3% .066 243.157)",
        },
    },
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "config.console.sidebar_navigation",
    },
}
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"
