"""`flows.sign_in_throttle`: how long a sign-in must wait after failed ones."""

from __future__ import annotations

import pytest
from django.core.cache.backends.locmem import LocMemCache

from flows.sign_in_throttle import MAX_DELAY_S, SignInThrottle, delay_after


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0), (4, 0), (5, 2), (6, 4), (7, 8), (12, 256), (14, MAX_DELAY_S), (10_000, MAX_DELAY_S)],
)
def test_delay_after_failures(failures: int, delay: float) -> None:
    assert delay_after(failures, free_failures=5) == delay


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> SignInThrottle:
    cache = LocMemCache("sign-in-tests", {})
    cache.clear()
    return SignInThrottle(cache, free_failures=3, clock=clock)


def test_waits_grow_after_the_free_failures_and_run_out(throttle, clock) -> None:
    for _ in range(3):
        assert throttle.wait_s("alice", "10.0.0.1") == 0
        throttle.failed("alice", "10.0.0.1")
    assert throttle.wait_s("alice", "10.0.0.1") == 2
    clock.now += 1.5
    assert throttle.wait_s("alice", "10.0.0.1") == 0.5
    clock.now += 0.5
    assert throttle.wait_s("alice", "10.0.0.1") == 0
    throttle.failed("alice", "10.0.0.1")
    assert throttle.wait_s("alice", "10.0.0.1") == 4


def test_counted_per_username_and_address(throttle) -> None:
    for _ in range(3):
        throttle.failed("alice", "10.0.0.1")
    assert throttle.wait_s("ALICE", "10.0.0.1") > 0  # usernames compared case-insensitively
    assert throttle.wait_s("alice", "10.0.0.2") == 0
    assert throttle.wait_s("bob", "10.0.0.1") == 0


def test_a_success_forgets_the_failures(throttle) -> None:
    for _ in range(2):
        throttle.failed("alice", "10.0.0.1")
    throttle.succeeded("alice", "10.0.0.1")
    throttle.failed("alice", "10.0.0.1")
    assert throttle.wait_s("alice", "10.0.0.1") == 0
