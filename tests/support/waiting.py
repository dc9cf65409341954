"""The one way tests wait: `eventually(condition)`, and `eventually_async` for async tests.

A test that waits for the broker, a tap, a subprocess or a websocket asks the same question:
"is it true yet?". Both helpers ask it again and again until the condition returns something
truthy (which they return) or the timeout passes, and then fail saying what was awaited and
the last value or exception seen. A condition may assert: a failed assertion counts as "not
yet", and its message is the one reported if it never passes. A condition that knows waiting
longer cannot help (the process it waits for has exited) raises `StopWaiting`, which ends the
wait at once.

Timeouts are generous: the suite shares two cores with other runs, and a test that waits
longer than needed costs nothing when things work. How fast something happens is measured by
the benchmarks (`benchmarks/`), never asserted here.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 15.0
DEFAULT_INTERVAL_S = 0.05
_SHOWN_CHARACTERS = 600


class NeverHappened(AssertionError):
    """What a test waited for did not happen within its timeout."""


class StopWaiting(Exception):
    """Raised by a condition that can never become true now: the wait fails at once."""


def eventually(
    condition: Callable[[], T],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = DEFAULT_INTERVAL_S,
) -> T:
    """Call `condition` until it returns something truthy, and return that.

    Fails with `NeverHappened` after `timeout` seconds, naming `what` was awaited and the
    last value or exception the condition gave.
    """
    deadline = time.monotonic() + timeout
    for attempt in itertools.count(1):
        outcome = _Outcome.of(condition)
        if outcome.succeeded:
            return outcome.value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise outcome.failure(what, timeout, attempt)
        time.sleep(interval)
    raise AssertionError("itertools.count never ends")


async def eventually_async(
    condition: Callable[[], Awaitable[T] | T],
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = DEFAULT_INTERVAL_S,
) -> T:
    """`eventually` for async tests: `condition` may be a coroutine function.

    Each attempt is cut off at the deadline, so a condition that awaits something (the next
    websocket message, say) cannot overrun the timeout. Use `interval=0` for such conditions:
    the await is the pause.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for attempt in itertools.count(1):
        outcome = await _Outcome.of_async(condition, lambda: deadline - loop.time())
        if outcome.succeeded:
            return outcome.value  # type: ignore[return-value]
        if loop.time() >= deadline:
            raise outcome.failure(what, timeout, attempt)
        await asyncio.sleep(interval)
    raise AssertionError("itertools.count never ends")


class _Outcome:
    """What one attempt gave: a value, or an exception (and the failure message, if the last)."""

    def __init__(
        self, *, value: object = None, error: Exception | None = None, cut_off: bool = False
    ) -> None:
        self.value = value
        self.error = error
        self.cut_off = cut_off

    @property
    def succeeded(self) -> bool:
        return self.error is None and bool(self.value)

    @classmethod
    def of(cls, condition: Callable[[], object]) -> _Outcome:
        try:
            return cls(value=condition())
        except StopWaiting:
            raise
        except Exception as exc:  # not yet; reported if it stays so
            return cls(error=exc)

    @classmethod
    async def of_async(
        cls, condition: Callable[[], object], remaining: Callable[[], float]
    ) -> _Outcome:
        """The condition's answer, awaited if need be, but not beyond the deadline."""
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await asyncio.wait_for(value, max(remaining(), 0))
            return cls(value=value)
        except StopWaiting:
            raise
        except Exception as exc:  # not yet; reported if it stays so
            return cls(error=exc, cut_off=isinstance(exc, TimeoutError) and remaining() <= 0)

    def failure(self, what: str, timeout: float, attempts: int) -> NeverHappened:
        if self.cut_off:
            last = "the last attempt was still waiting at the deadline"
        elif self.error is not None:
            last = f"last exception: {_shorten(f'{type(self.error).__name__}: {self.error}')}"
        else:
            last = f"last value: {_shorten(repr(self.value))}"
        failure = NeverHappened(f"waited {timeout:g} s ({attempts} attempts) for {what}; {last}")
        failure.__cause__ = self.error
        return failure


def _shorten(text: str) -> str:
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return text[:_SHOWN_CHARACTERS] + f"... ({len(text)} characters)"
