"""`eventually`, the one way tests wait: what it returns, and what it says when it gives up."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.waiting import NeverHappened, StopWaiting, eventually, eventually_async


def test_returns_the_first_truthy_value() -> None:
    answers = iter([None, 0, [], "ready"])
    assert eventually(lambda: next(answers), what="ready", interval=0) == "ready"


def test_an_exception_or_a_failed_assertion_means_not_yet() -> None:
    attempts = itertools.count(1)

    def third_time_lucky() -> int:
        attempt = next(attempts)
        if attempt == 1:
            raise ConnectionError("not up yet")
        assert attempt > 2, "still starting"
        return attempt

    assert eventually(third_time_lucky, what="the third attempt", interval=0) == 3


@pytest.mark.parametrize(
    ("condition", "said"),
    [
        (lambda: [], "last value: []"),
        (lambda: {"state": "starting"}.get("ready"), "last value: None"),
        (lambda: 1 / 0, "last exception: ZeroDivisionError: division by zero"),
    ],
)
def test_giving_up_names_what_was_awaited_and_the_last_answer(condition, said: str) -> None:
    with pytest.raises(NeverHappened) as failed:
        eventually(condition, what="the tap to run", timeout=0.05, interval=0.01)
    assert "for the tap to run;" in str(failed.value)
    assert said in str(failed.value)


def test_a_long_last_answer_is_shortened() -> None:
    def too_long() -> None:
        raise AssertionError("y" * 10_000)

    with pytest.raises(NeverHappened) as failed:
        eventually(too_long, what="it", timeout=0)
    assert len(str(failed.value)) < 1_000
    assert str(failed.value).endswith("... (10016 characters)")


def test_stop_waiting_ends_the_wait_at_once() -> None:
    attempts = itertools.count(1)

    def exited() -> bool:
        next(attempts)
        raise StopWaiting("the server exited with 1")

    with pytest.raises(StopWaiting, match="exited with 1"):
        eventually(exited, what="the server", timeout=60)
    assert next(attempts) == 2  # one attempt only


def test_the_async_twin_awaits_the_condition() -> None:
    answers = iter([False, False, "done"])

    async def condition() -> str | bool:
        await asyncio.sleep(0)
        return next(answers)

    assert asyncio.run(eventually_async(condition, what="done", interval=0)) == "done"


def test_the_async_twin_takes_a_plain_function_too() -> None:
    answers = iter([0, 7])
    assert asyncio.run(eventually_async(lambda: next(answers), what="7", interval=0)) == 7


def test_an_attempt_still_waiting_at_the_deadline_is_cut_off() -> None:
    async def never_answers() -> bool:
        await asyncio.Event().wait()
        return True

    with pytest.raises(NeverHappened) as failed:
        asyncio.run(eventually_async(never_answers, what="a message", timeout=0.05))
    assert "still waiting at the deadline" in str(failed.value)


def test_stop_waiting_ends_the_async_wait_at_once() -> None:
    async def closed() -> bool:
        raise StopWaiting("the websocket closed")

    with pytest.raises(StopWaiting, match="closed"):
        asyncio.run(eventually_async(closed, what="a message", timeout=60))
