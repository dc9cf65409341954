"""The stores the web workers share state through: Redis, and the per-process memory."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

# A database of these tests' own on the machine's Redis, emptied before and after each test
# (the channel layer and the dashboards the tests start use database 0).
REDIS_TEST_URL = "redis://127.0.0.1:6379/7"

# Makes another worker's cache on the same store: a new client each time, as a process has.
Worker = Callable[[], BaseCache]


@pytest.fixture(params=["redis", "locmem"])
def worker_cache(request: pytest.FixtureRequest) -> Iterator[Worker]:
    """Each call, one worker's cache; every worker's reaches the same store."""
    if request.param == "redis":
        made: list[RedisCache] = []

        def redis_worker() -> BaseCache:
            made.append(RedisCache(REDIS_TEST_URL, {"KEY_PREFIX": "flows-test"}))
            return made[-1]

        redis_worker().clear()  # FLUSHDB of database 7 only
        yield redis_worker
        made[0].clear()
        for cache in made:  # Django never closes a Redis pool: these tests' own, closed here
            cache._cache.get_client().connection_pool.disconnect()
    else:
        # Instances of one name share their entries, as a process's threads do.
        name = f"shared-state-{uuid.uuid4().hex}"
        yield lambda: LocMemCache(name, {})
        LocMemCache(name, {}).clear()
