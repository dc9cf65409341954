"""The store the web workers share: Django's default cache, through one client per owner.

With several daphne workers behind one address (and `manage.py tap` beside them), what one
request leaves for the next (a repeat run's status and cancel, a submitted form's answer)
must live outside any one process: in Redis when `CACHE_URL` or a Redis `CHANNEL_LAYER_URL`
is set (`dashboard.env.caches`), else in this process's memory, which serves one process.

Why not `django.core.cache.cache`: under ASGI each request context gets its own backend
instance, and each Redis instance its own connection pool, so a publisher thread and the
requests about its runs would open connection after connection. A process-wide owner (a
runtime member) holds one client instead, used from any thread: the Redis client's pool
and the memory cache are both thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis.exceptions
from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches


class SharedStoreDown(Exception):
    """The shared store (Redis) did not answer; `message` says so, for the person asking."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def shared_store() -> BaseCache:
    """A client of its own of the default cache, for an owner that lives as the process."""
    return caches.create_connection(DEFAULT_CACHE_ALIAS)


@contextmanager
def reaching_store(consequence: str) -> Iterator[None]:
    """Turn the store's failures (Redis down, refusing, timing out) into `SharedStoreDown`,
    saying what that means here (`consequence`: "nothing was published", ...), so that a
    request answers with a clear error instead of a 500."""
    try:
        yield
    except (redis.exceptions.RedisError, OSError) as exc:
        raise SharedStoreDown(
            f"The dashboard's shared store (Redis) did not answer ({type(exc).__name__}): "
            f"{consequence}. Try again once it is back."
        ) from exc


__all__ = ["SharedStoreDown", "reaching_store", "shared_store"]
