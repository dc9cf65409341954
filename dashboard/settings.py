"""Django settings: everything from the environment, with safe local defaults.

See the README's configuration table for each variable.
"""

from __future__ import annotations

import os
from pathlib import Path

from dashboard import env
from flows.masking import DEFAULT_MASK_PATTERNS

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_STATE_DIR = Path(os.environ.get("FLOWS_STATE_DIR", BASE_DIR / ".local"))

SECRET_KEY = env.secret_key(
    os.environ.get("DJANGO_SECRET_KEY"), key_file=LOCAL_STATE_DIR / "secret_key"
)
DEBUG = env.parse_bool(os.environ.get("DJANGO_DEBUG"), default=False)
ALLOWED_HOSTS = env.parse_list(
    os.environ.get("DJANGO_ALLOWED_HOSTS"), default=["127.0.0.1", "localhost", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env.parse_list(os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS"), default=[])

# --- the broker -------------------------------------------------------------------------------
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
# AMQP_URL may list a cluster's nodes, comma-separated (flows/broker/amqp.py); the API signs
# in with the first one's credentials.
RABBITMQ_API_URL, RABBITMQ_API_USER, RABBITMQ_API_PASSWORD = env.api_credentials(
    os.environ.get("RABBITMQ_API_URL", "http://127.0.0.1:15672/"), AMQP_URL.split(",")[0]
)
# Seconds; short so an unreachable broker is reported quickly instead of hanging a page.
RABBITMQ_API_TIMEOUT = float(os.environ.get("RABBITMQ_API_TIMEOUT", "3"))

# --- Django -----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",  # first, so runserver serves ASGI (HTTP and websockets)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "flows",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before whitenoise, so static files carry the policies too (every response does).
    "csp.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Everything but the login views requires a signed-in user (Django 5.1+).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A page refused by flows.access (a vhost outside the user's limits): the refusal page.
    "flows.views.access.AccessDeniedMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "flows.context_processors.vhost_selection",
                "flows.context_processors.access_context",
                "flows.context_processors.recording_context",
            ],
        },
    },
]

DATABASES = {
    "default": env.database_config(
        os.environ.get("DATABASE_URL"), default_sqlite_path=LOCAL_STATE_DIR / "db.sqlite3"
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Browser tests run the server in another process, which cannot see an in-memory test DB.
    DATABASES["default"]["TEST"] = {"NAME": str(LOCAL_STATE_DIR / "test-db.sqlite3")}
    # Several threads write (the taps' firehose leases, recorders, the audit log): a deferred
    # transaction that reads and then writes deadlocks with another writer ("database is
    # locked" at once, no waiting); IMMEDIATE takes the write lock up front and waits for it.
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CHANNEL_LAYERS = env.channel_layers(os.environ.get("CHANNEL_LAYER_URL"))

# Shared by the web workers and `manage.py tap` when Redis is configured: repeat runs,
# idempotency keys, sign-in throttles (dashboard/env.py `caches`).
CACHES = env.caches(os.environ.get("CACHE_URL"), os.environ.get("CHANNEL_LAYER_URL"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# --- browser hardening (README, Security) ------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No inline script or style anywhere: every script and stylesheet is a file of ours under
# static/ (htmx is configured not to eval and not to inject its indicator styles; graph.js
# keeps cytoscape from injecting its one <style>). Websockets are 'self' too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Served over HTTPS (directly, or behind a proxy that terminates TLS): secure cookies, HSTS,
# and plain HTTP redirected. Behind a proxy, also name the header it sets to say so
# (DJANGO_SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto), or Django never sees a request as secure.
SERVED_OVER_HTTPS = env.parse_bool(os.environ.get("DJANGO_HTTPS"), default=False)
SESSION_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
SECURE_SSL_REDIRECT = SERVED_OVER_HTTPS
SECURE_HSTS_SECONDS = (
    env.parse_positive_int(os.environ.get("DJANGO_HSTS_SECONDS"), default=31_536_000)
    if SERVED_OVER_HTTPS
    else 0
)
SECURE_PROXY_SSL_HEADER = env.proxy_ssl_header(os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER"))
# Failed sign-ins per username and address before the next attempt must wait (doubling).
FLOWS_SIGN_IN_FREE_FAILURES = env.parse_positive_int(
    os.environ.get("FLOWS_SIGN_IN_FREE_FAILURES"), default=5
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = LOCAL_STATE_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
# Serve straight from the source folders: no collectstatic step before a local run.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # Never let a request's body or broker URL with credentials reach the log via Django.
        "django.request": {"level": "ERROR"},
        "pika": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --- live page (issue 6) ----------------------------------------------------------------------
# Rows a live page keeps; older ones are trimmed in the browser. (What one page is sent per
# second is FLOWS_TAP_VIEWER_MAX_RATE, below.)
LIVE_MAX_ROWS = int(os.environ.get("LIVE_MAX_ROWS", "500"))

# --- the tap (flows/tap/) -----------------------------------------------------------------------
# Where the tap runs: "web" (inside the web process; needs nothing else) or "process"
# (`manage.py tap`, reached through a Redis channel layer). Default: web with the in-memory
# layer, process with Redis.
FLOWS_TAP_RUNS_IN = os.environ.get(
    "FLOWS_TAP_RUNS_IN",
    "web" if CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer") else "process",
)
# Bytes of frames a websocket viewer that stops reading may have waiting on the server before
# its batches are dropped and counted (flows/websockets/backpressure.py).
FLOWS_WS_MAX_UNSENT_BYTES = int(os.environ.get("FLOWS_WS_MAX_UNSENT_BYTES", str(16 * 1024 * 1024)))
# Seconds a tap keeps running after its last viewer left (a page reload does not restart it).
FLOWS_TAP_STOP_DELAY = float(os.environ.get("FLOWS_TAP_STOP_DELAY", "10"))
# Messages the tap queue holds before the broker drops the oldest (counted as overflow).
FLOWS_TAP_QUEUE_MAX_LENGTH = int(os.environ.get("FLOWS_TAP_QUEUE_MAX_LENGTH", "50000"))
# Consumers on each tap's queue: the tap's own plus this many minus one processes of their
# own (flows/tap/consumer_process.py), for vhosts busier than one core can take.
FLOWS_TAP_CONSUMERS = env.parse_positive_int(os.environ.get("FLOWS_TAP_CONSUMERS"), default=1)
# Bytes of a body shown in an event preview.
FLOWS_TAP_PREVIEW_LIMIT = int(os.environ.get("FLOWS_TAP_PREVIEW_LIMIT", str(64 * 1024)))
# Seconds between bindings-mode syncs with the management API (new exchanges bound within it).
FLOWS_TAP_SYNC_INTERVAL = float(os.environ.get("FLOWS_TAP_SYNC_INTERVAL", "2"))
# Events per second sent to one websocket viewer; the rest is sampled out (and counted).
FLOWS_TAP_VIEWER_MAX_RATE = int(os.environ.get("FLOWS_TAP_VIEWER_MAX_RATE", "200"))
# Vhosts whose tracing (firehose) the administrator allows any signed-in viewer to switch on.
# Elsewhere, only users with the `flows.use_firehose` permission may choose the firehose.
FLOWS_FIREHOSE_VHOSTS = env.parse_list(os.environ.get("FLOWS_FIREHOSE_VHOSTS"), default=[])
# Names whose values never leave the server (README, Security): comma-separated,
# case-insensitive shell-style patterns matched against header names, property names and JSON
# body keys at any depth. Empty: nothing is masked.
FLOWS_MASK = env.parse_list(os.environ.get("FLOWS_MASK"), default=list(DEFAULT_MASK_PATTERNS))
# The channel `manage.py tap` listens on for viewers (distinct per dashboard sharing a Redis).
FLOWS_TAP_CONTROL_CHANNEL = os.environ.get("FLOWS_TAP_CONTROL_CHANNEL", "flows-tap-control")


# --- publishing (flows/publishing/) -----------------------------------------------------------
# Shell-style patterns of the exchanges anyone may publish to (`demo.*,test.*`); empty = all.
# The default exchange is `amq.default` here.
FLOWS_PUBLISH_EXCHANGES = env.parse_list(os.environ.get("FLOWS_PUBLISH_EXCHANGES"), default=[])
FLOWS_PUBLISH_MAX_BODY_BYTES = env.parse_positive_int(
    os.environ.get("FLOWS_PUBLISH_MAX_BODY_BYTES"), default=1024 * 1024
)

# --- topology (graph page, /api/topology, /api/route) -----------------------------------------
# Seconds to wait for the broker to list a whole vhost (thousands of queues and bindings take
# it seconds); connecting still times out after 2 s, so a broker that is down shows at once.
RABBITMQ_API_LIST_TIMEOUT = float(os.environ.get("RABBITMQ_API_LIST_TIMEOUT", "30"))
# Every page (topology, publish, live) shares a vhost's topology read for this many seconds.
FLOWS_TOPOLOGY_MAX_AGE_S = float(os.environ.get("FLOWS_TOPOLOGY_MAX_AGE_S", "2"))
# A vhost whose read takes longer than this (seconds) is served from its last read while one
# background read refreshes it, instead of every viewer's poll listing it again.
FLOWS_TOPOLOGY_SLOW_READ_S = float(os.environ.get("FLOWS_TOPOLOGY_SLOW_READ_S", "1"))
# ...but never from a read older than this (seconds).
FLOWS_TOPOLOGY_MAX_STALE_S = float(os.environ.get("FLOWS_TOPOLOGY_MAX_STALE_S", "60"))

# --- access and audit (flows/access.py, flows/audit.py) ---------------------------------------
# No write to any broker (publish, repeat, tracing, demo load/unload/runs, moves) for anyone.
FLOWS_READ_ONLY = env.parse_bool(os.environ.get("FLOWS_READ_ONLY"), default=False)
# Days the audit log keeps an entry (pruned on every write and by `manage.py prune_audit`).
FLOWS_AUDIT_RETENTION_DAYS = env.parse_positive_int(
    os.environ.get("FLOWS_AUDIT_RETENTION_DAYS"), default=90
)
