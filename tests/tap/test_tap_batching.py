"""Leading-edge batching on the real broker: a quiet tap hands over each event at once,
a busy one still sends a few large batches rather than one per message."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from flows.tap.tap import Tap, TapSettings
from tests.support.tap_harness import FAST, amqp_channel
from tests.support.waiting import DEFAULT_TIMEOUT_S, eventually

SLOW_BUSY = replace(FAST, batch_interval_s=2.0, quiet_gap_s=0.025, busy_batch_events=8)
# A busy interval longer than any wait below: were a quiet event held for it, the quiet test
# would time out waiting (no clock is held to a bound a loaded machine could miss).
HELD_FOR_A_MINUTE = replace(SLOW_BUSY, batch_interval_s=60.0)


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

    def wait_for_count(self, n: int, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        eventually(
            lambda: self.count() == n,
            what=f"{n} events handed over",
            timeout=timeout,
            interval=0.01,
        )


@contextmanager
def tap_and_batches(vhost: str, settings: TapSettings) -> Iterator[tuple[Any, BatchRecorder]]:
    recorder = BatchRecorder()
    with amqp_channel(vhost) as channel:
        channel.exchange_declare("ex", "fanout")
        tap = Tap(vhost, "bindings", recorder, tap_settings=settings)
        tap.start()
        try:
            eventually(lambda: recorder.state == "running", what="the tap to run")
            yield channel, recorder
        finally:
            # An idle tap thread waits up to batch_interval_s for the broker: ask it to stop,
            # then wake it with a delivery, rather than wait that out.
            tap.stop(timeout=0)
            channel.basic_publish("ex", "", b"wake up")
            tap.stop()


@pytest.mark.parametrize("messages", [1, 3])
def test_a_quiet_tap_hands_each_event_over_at_once(scratch_vhost: str, messages: int) -> None:
    settings = HELD_FOR_A_MINUTE
    with tap_and_batches(scratch_vhost, settings) as (channel, recorder):
        for n in range(messages):
            channel.basic_publish("ex", "", b"%d" % n)
            # Well within the busy interval: a held event would miss this.
            recorder.wait_for_count(n + 1, timeout=settings.batch_interval_s / 2)
            # The quiet gap (25 ms) must pass: the next message is then a batch of its own.
            time.sleep(0.1)
        batches = list(recorder.batches)
    assert [len(events) for _, events in batches] == [1] * messages
    for handed_over, [event] in batches:
        # Not held for the busy interval (nor the quiet gap: nothing came just before).
        assert handed_over - event["received_at"] < settings.batch_interval_s


def test_a_busy_tap_batches(scratch_vhost: str) -> None:
    with tap_and_batches(scratch_vhost, SLOW_BUSY) as (channel, recorder):
        total = 3_000
        for n in range(total):
            channel.basic_publish("ex", "", b"%d" % n)
        recorder.wait_for_count(total, timeout=60)
        batches = list(recorder.batches)
    sizes = [len(events) for _, events in batches]
    # Never one group_send per message under load: a handful of batches, most events in
    # batches of at least busy_batch_events.
    assert len(sizes) <= total // SLOW_BUSY.busy_batch_events
    assert sum(size for size in sizes if size >= SLOW_BUSY.busy_batch_events) >= total * 0.9
    seqs = [event["seq"] for _, events in batches for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == total
