"""Pure helpers that turn environment variables into Django settings.

Kept free of Django imports so they can be tested with plain tables of cases.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dj_database_url

from flows.parsing import boolean_word


def parse_bool(value: str | None, *, default: bool) -> bool:
    """Read a boolean environment variable; refuse anything ambiguous."""
    if value is None:
        return default
    if not value.strip():  # set but empty: off
        return False
    parsed = boolean_word(value)
    if parsed is not None:
        return parsed
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def parse_list(value: str | None, *, default: list[str]) -> list[str]:
    """Comma-separated list, blanks dropped."""
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def database_config(url: str | None, *, default_sqlite_path: Path) -> dict[str, Any]:
    """DATABASE_URL to a Django DATABASES entry; SQLite file when unset."""
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite_path)}
    return {**dj_database_url.parse(url, conn_max_age=0)}


REDIS_SOCKET_TIMEOUT_S = 15
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def channel_layers(url: str | None) -> dict[str, Any]:
    """CHANNEL_LAYER_URL to CHANNEL_LAYERS: in-memory when unset, channels_redis for redis://."""
    if not url or url == "memory://":
        # A viewer's channel holds its tap batches while its socket is busy: at 40 batches
        # a second, the default 100 is 2.5 s of a stall before batches are missed. Batches
        # are shared, not copied (`flows.tap.tap.SharedEvents`): a longer queue costs little.
        return {
            "default": {
                "BACKEND": "channels.layers.InMemoryChannelLayer",
                "CONFIG": {"capacity": 1000},
            }
        }
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        return {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                # Batches of tap events are large; the default 100 per channel is too tight.
                # redis-py 8 reads with a 5 s socket timeout by default, exactly as long as
                # channels_redis blocks waiting for a message: an idle consumer then dies
                # with "Timeout reading". Give the read more time than the wait.
                "CONFIG": {
                    "hosts": [{"address": url, "socket_timeout": REDIS_SOCKET_TIMEOUT_S}],
                    "capacity": 1000,
                    "expiry": 10,
                },
            }
        }
    raise ValueError(f"CHANNEL_LAYER_URL must be memory:// or redis://..., got scheme {scheme!r}")


# A cache read or write waits at most this long for Redis: a request must not hang on it.
CACHE_SOCKET_TIMEOUT_S = 5
# Per-process memory keeps this many entries before culling (Django's default is 300).
LOCMEM_MAX_ENTRIES = 10_000


def caches(cache_url: str | None, channel_layer_url: str | None) -> dict[str, Any]:
    """CACHE_URL to CACHES: Redis, shared by every process, or memory, one per process.

    Unset, it follows CHANNEL_LAYER_URL: a Redis channel layer means several processes (web
    workers, `manage.py tap`), and what they share (repeat runs, idempotency keys, sign-in
    throttles) must then live in Redis too. `locmem://` keeps it per process regardless.
    """
    url = cache_url or ""
    if not url and channel_layer_url and urlsplit(channel_layer_url).scheme in REDIS_SCHEMES:
        url = channel_layer_url
    if not url or url == "locmem://":
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "OPTIONS": {"MAX_ENTRIES": LOCMEM_MAX_ENTRIES},
            }
        }
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                # Beside the channel layer's keys (`asgi:...`) when both use one database.
                "KEY_PREFIX": "flows",
                "OPTIONS": {
                    "socket_timeout": CACHE_SOCKET_TIMEOUT_S,
                    "socket_connect_timeout": CACHE_SOCKET_TIMEOUT_S,
                },
            }
        }
    raise ValueError(f"CACHE_URL must be locmem:// or redis://..., got scheme {scheme!r}")


def api_credentials(api_url: str, amqp_url: str) -> tuple[str, str, str]:
    """Split RABBITMQ_API_URL into (base URL without credentials, user, password).

    The management API uses the AMQP URL's credentials unless its own URL carries some.
    """
    api = urlsplit(api_url)
    if api.scheme not in {"http", "https"} or not api.hostname:
        raise ValueError("RABBITMQ_API_URL must look like http://host:15672/")
    amqp = urlsplit(amqp_url)
    user = unquote(api.username) if api.username is not None else unquote(amqp.username or "guest")
    if api.username is not None:
        password = unquote(api.password or "")
    else:
        password = unquote(amqp.password or "guest")
    netloc = api.hostname if ":" not in api.hostname else f"[{api.hostname}]"
    if api.port:
        netloc = f"{netloc}:{api.port}"
    base = f"{api.scheme}://{netloc}{api.path.rstrip('/')}/"
    return base, user, password


def secret_key(value: str | None, *, key_file: Path) -> str:
    """DJANGO_SECRET_KEY, or a random key generated once and kept in a git-ignored file.

    No secret lives in the repository, and a local run needs nothing set.
    """
    if value:
        return value
    if key_file.exists():
        return key_file.read_text().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def parse_positive_int(value: str | None, *, default: int) -> int:
    """A positive whole number (sizes, limits); refuse anything else."""
    if value is None or value.strip() == "":
        return default
    text = value.strip().replace("_", "")
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"expected a positive whole number, got {value!r}")
    return int(text)


def proxy_ssl_header(name: str | None) -> tuple[str, str] | None:
    """DJANGO_SECURE_PROXY_SSL_HEADER (`X-Forwarded-Proto`) as Django's SECURE_PROXY_SSL_HEADER.

    The header a TLS-terminating proxy sets to `https`; trust it only behind such a proxy,
    which must also overwrite whatever a client sent in it.
    """
    if name is None or not name.strip():
        return None
    header = name.strip()
    if not all(part.isalnum() for part in header.split("-")):
        raise ValueError(f"expected an HTTP header name such as X-Forwarded-Proto, got {name!r}")
    return ("HTTP_" + header.upper().replace("-", "_"), "https")
