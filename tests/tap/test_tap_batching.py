"""Leading-edge batching on the real broker: a quiet tap hands over each event at once,
a busy one still sends a few large batches rather than one per message."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from flows.tap.tap import Tap
from tests.tap.helpers import FAST, amqp_channel

# A long busy interval: were a quiet event held for it, the tests below would see it.
SLOW_BUSY = replace(FAST, batch_interval_s=2.0, quiet_gap_s=0.025, busy_batch_events=8)


class BatchRecorder:
    """A sink that keeps each non-empty batch with the time it was handed over."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[dict[str, Any]]]] = []
        self.state = ""
        self._lock = threading.Lock()

    def __call__(self, events: list, status: dict) -> None:
        with self._lock:
            self.state = status["state"]
            if events:
                self.batches.append((time.time(), list(events)))

    def count(self) -> int:
        with self._lock:
            return sum(len(events) for _, events in self.batches)

    def wait(self, predicate, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)


@pytest.fixture
def tap_and_batches(scratch_vhost: str):
    recorder = BatchRecorder()
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("ex", "fanout")
        tap = Tap(scratch_vhost, "bindings", recorder, tap_settings=SLOW_BUSY)
        tap.start()
        try:
            recorder.wait(lambda: recorder.state == "running")
            yield channel, recorder
        finally:
            tap.stop()


@pytest.mark.parametrize("messages", [1, 3])
def test_a_quiet_tap_hands_each_event_over_at_once(tap_and_batches, messages: int) -> None:
    channel, recorder = tap_and_batches
    for n in range(messages):
        channel.basic_publish("ex", "", b"%d" % n)
        recorder.wait(lambda n=n: recorder.count() == n + 1)
        time.sleep(0.1)  # quieter than quiet_gap_s: each message is a batch of its own
    assert [len(events) for _, events in recorder.batches] == [1] * messages
    for handed_over, [event] in recorder.batches:
        # Not held for the 2 s busy interval (nor the 25 ms quiet gap: nothing came before).
        assert handed_over - event["received_at"] < 0.5


def test_a_busy_tap_batches(tap_and_batches) -> None:
    channel, recorder = tap_and_batches
    total = 3_000
    for n in range(total):
        channel.basic_publish("ex", "", b"%d" % n)
    recorder.wait(lambda: recorder.count() == total, timeout=30)
    sizes = [len(events) for _, events in recorder.batches]
    # Never one group_send per message under load: a handful of batches, most events in
    # batches of at least busy_batch_events.
    assert len(sizes) <= total // SLOW_BUSY.busy_batch_events
    assert sum(size for size in sizes if size >= SLOW_BUSY.busy_batch_events) >= total * 0.9
    seqs = [event["seq"] for _, events in recorder.batches for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == total
