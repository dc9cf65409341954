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

from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches


def shared_store() -> BaseCache:
    """A client of its own of the default cache, for an owner that lives as the process."""
    return caches.create_connection(DEFAULT_CACHE_ALIAS)


__all__ = ["shared_store"]
