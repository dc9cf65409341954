"""`IdempotentPublishes`: a form or API call submitted twice publishes once, even when the two
submits reach two web workers.

Against real Redis (database 7) and the per-process memory cache; the "publish" is a function
that counts its calls and answers a result with a real prediction (whose read-only argument
tables must survive the trip through the store).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from flows.publishing.fields import parse_publish_request
from flows.publishing.publisher import PublishFailed, PublishOutcome
from flows.publishing.service import IdempotentPublishes, PublishResult
from flows.routing_rules.prediction import predict
from flows.topology.parsing import build_topology
from tests.publishing.conftest import Worker
from tests.support.topology_definitions import binding, exchange, queue

SHOP = build_topology(
    "v",
    exchanges=[exchange("orders", "headers")],
    queues=[queue("eu")],
    bindings=[binding("orders", "eu", arguments={"x-match": "any", "region": "eu"})],
)


def published() -> PublishResult:
    request = parse_publish_request(
        {"vhost": "v", "exchange": "orders", "body": "a body", "headers": {"region": "eu"}}
    )
    return PublishResult(
        request=request,
        prediction=predict(SHOP, exchange="orders", routing_key="", headers=request.headers),
        outcome=PublishOutcome(confirmed=True, returned=False, elapsed_ms=1.5),
        body_bytes=len(request.body),
    )


class Publish:
    """The work of a submit: counts its calls; may wait for the test to let it finish."""

    def __init__(self, *, gate: threading.Event | None = None) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.gate = gate

    def __call__(self) -> PublishResult:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30)
        return published()


def test_a_token_submitted_through_two_workers_publishes_once(worker_cache: Worker) -> None:
    here, there = IdempotentPublishes(worker_cache()), IdempotentPublishes(worker_cache())
    publish = Publish()
    first = here.run((1, "token"), publish)
    again = there.run((1, "token"), publish)
    assert publish.calls == 1
    assert (first.duplicate, again.duplicate) == (False, True)
    # The same answer: the prediction (its argument tables included) and the broker's.
    assert again.prediction == first.prediction and again.prediction.queues == ("eu",)
    assert again.outcome == first.outcome
    assert again.request.message_id == first.request.message_id
    assert again.request.body == b""  # remembered without the body
    assert again.body_bytes == first.body_bytes


def test_another_users_same_token_is_another_submit(worker_cache: Worker) -> None:
    publishes, publish = IdempotentPublishes(worker_cache()), Publish()
    publishes.run((1, "token"), publish)
    assert not publishes.run((2, "token"), publish).duplicate
    assert publish.calls == 2


def test_submits_racing_through_two_workers_publish_once(worker_cache: Worker) -> None:
    here, there = IdempotentPublishes(worker_cache()), IdempotentPublishes(worker_cache())
    gate = threading.Event()
    publish = Publish(gate=gate)
    results: list[PublishResult] = []

    def submit(through: IdempotentPublishes) -> Callable[[], None]:
        return lambda: results.append(through.run((1, "double-click"), publish))

    first = threading.Thread(target=submit(here))
    first.start()
    assert publish.started.wait(10)  # the first has claimed the token and is publishing
    second = threading.Thread(target=submit(there))
    second.start()
    gate.set()
    first.join(30)
    second.join(30)
    assert publish.calls == 1
    assert sorted(result.duplicate for result in results) == [False, True]


def test_a_failed_submit_frees_its_token(worker_cache: Worker) -> None:
    here, there = IdempotentPublishes(worker_cache()), IdempotentPublishes(worker_cache())

    def fail() -> PublishResult:
        raise PublishFailed("the broker is down", kind="unreachable")

    with pytest.raises(PublishFailed, match="the broker is down"):
        here.run((1, "token"), fail)
    publish = Publish()
    assert not there.run((1, "token"), publish).duplicate  # fixed, and submitted again
    assert publish.calls == 1


def test_a_resubmit_while_the_first_still_publishes_is_told_so(worker_cache: Worker) -> None:
    here = IdempotentPublishes(worker_cache())
    there = IdempotentPublishes(worker_cache(), wait_s=0.2)
    gate = threading.Event()
    publish = Publish(gate=gate)
    first = threading.Thread(target=lambda: here.run((1, "token"), publish))
    first.start()
    try:
        assert publish.started.wait(10)
        with pytest.raises(PublishFailed, match="still being published") as raised:
            there.run((1, "token"), Publish())
        assert raised.value.kind == "timeout"
    finally:
        gate.set()
        first.join(30)
    assert there.run((1, "token"), Publish()).duplicate  # and once it has, the answer
    assert publish.calls == 1


@pytest.mark.parametrize(
    "token",
    ["with spaces and\nnewlines", "ünïcødé ✓", "x" * 1000, "", "colons:in:it"],
)
def test_any_token_text_is_a_token(worker_cache: Worker, token: str) -> None:
    """Sent by anyone: never an invalid cache key (Django warns; warnings are errors here)."""
    publishes = IdempotentPublishes(worker_cache())
    publish = Publish()
    publishes.run((1, token), publish)
    assert publishes.run((1, token), publish).duplicate
    assert publish.calls == 1
