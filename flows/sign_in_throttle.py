"""Repeated failed sign-ins slowed down, per username and client address.

The first `free_failures` failed attempts cost nothing; after that each attempt must wait
`delay_after(failures)` seconds after the last failure (2 s, doubling, at most 15 minutes),
and an attempt that comes too early is refused without its password even being checked, so
guessing gets slower and slower while the owner, who knows the password, waits at most a
moment after a few typos. A successful sign-in forgets the failures.

Counted per username and address together: someone guessing one account from one place is
slowed down, and cannot lock its owner out from everywhere else. Kept in the one cache
(`CACHES["default"]`: shared by the web workers when it is Redis, see `dashboard.env.caches`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FIRST_DELAY_S = 2.0
MAX_DELAY_S = 15 * 60.0
# A count is forgotten this long after its last failure.
FORGET_AFTER_S = 24 * 3600


def delay_after(failures: int, *, free_failures: int) -> float:
    """Seconds an attempt must wait after the last of `failures` failed ones."""
    if failures < free_failures:
        return 0.0
    return min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** min(failures - free_failures, 32))


@dataclass
class SignInThrottle:
    cache: Any  # a Django cache
    free_failures: int = 5
    clock: Callable[[], float] = field(default=time.time)

    def wait_s(self, username: str, address: str) -> float:
        """Seconds before this username may try again from this address (0: now)."""
        failures, last_at = self._record(username, address)
        delay = delay_after(failures, free_failures=self.free_failures)
        return max(0.0, last_at + delay - self.clock()) if delay else 0.0

    def failed(self, username: str, address: str) -> None:
        failures, _ = self._record(username, address)
        self.cache.set(
            _key(username, address), (failures + 1, self.clock()), timeout=FORGET_AFTER_S
        )

    def succeeded(self, username: str, address: str) -> None:
        self.cache.delete(_key(username, address))

    def _record(self, username: str, address: str) -> tuple[int, float]:
        record = self.cache.get(_key(username, address))
        if isinstance(record, tuple) and len(record) == 2:
            return int(record[0]), float(record[1])
        return 0, 0.0


def _key(username: str, address: str) -> str:
    # Hashed: a cache key has a bounded length and alphabet, and a username is anything.
    digest = hashlib.sha256(f"{username.casefold()}\0{address}".encode()).hexdigest()
    return f"flows:sign-in-failures:{digest}"


def sign_in_throttle() -> SignInThrottle:
    from django.conf import settings
    from django.core.cache import cache

    return SignInThrottle(cache, free_failures=settings.FLOWS_SIGN_IN_FREE_FAILURES)
