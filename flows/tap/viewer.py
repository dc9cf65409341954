"""The viewer side of the tap (contracts §3): what one websocket connection gets to see.

Each connection filters the tap's events (so the few messages a person cares about are
never sampled away among thousands), then samples what is left down to what it can send,
and counts every event into exactly one bucket, so that

    received == sent + filtered_out + sampled_out + dropped

holds at every moment, whatever the rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flows.tap.filters import EventFilter

SLOW_VIEWER = "slow viewer"


class ViewerStream:
    """Per connection: filter, then sample to `max_events_per_second`, then count.

    Sampling is a token bucket refilled at `max_events_per_second` and holding at most one
    second's worth, so a quiet stream shows every message and a burst shows an evenly
    spread selection of it rather than just its first few messages.
    """

    def __init__(
        self,
        event_filter: EventFilter,
        max_events_per_second: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_events_per_second is not None and max_events_per_second < 1:
            raise ValueError("max_events_per_second must be at least 1 (or None: no limit)")
        self.event_filter = event_filter
        self.max_events_per_second = max_events_per_second
        self._clock = clock
        self._tokens = float(max_events_per_second or 0)
        self._refilled_at = clock()
        self._received = 0
        self._sent = 0
        self._filtered_out = 0
        self._sampled_out = 0
        self._dropped = 0
        self._drop_reasons: dict[str, int] = {}

    def process(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events to send to this viewer, in order; every event is counted once."""
        self._received += len(events)
        if self.event_filter.is_empty:
            wanted = events
        else:
            wanted = [event for event in events if self.event_filter.matches(event)]
        self._filtered_out += len(events) - len(wanted)
        chosen = self._sample(wanted)
        self._sampled_out += len(wanted) - len(chosen)
        self._sent += len(chosen)
        return chosen

    def _sample(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = self.max_events_per_second
        if limit is None or not events:
            return events
        now = self._clock()
        self._tokens = min(float(limit), self._tokens + (now - self._refilled_at) * limit)
        self._refilled_at = now
        allowed = min(len(events), int(self._tokens))
        self._tokens -= allowed
        if allowed == len(events):
            return events
        if allowed == 0:
            return []
        # Evenly spread over the batch: index i * n / allowed for i in 0..allowed-1.
        step = len(events) / allowed
        return [events[int(i * step)] for i in range(allowed)]

    def count_dropped(self, n: int, reason: str, *, already_processed: bool = False) -> None:
        """Count `n` events this viewer will not get, with the reason (e.g. a slow viewer).

        By default they are events that reached this viewer and were dropped without going
        through `process` (say, a whole batch while the socket is backed up): they count as
        received and dropped. With `already_processed=True` they are events `process`
        returned that could not be sent after all: they move from sent to dropped.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        if already_processed:
            if n > self._sent:
                raise ValueError("cannot drop more events than were sent")
            self._sent -= n
        else:
            self._received += n
        self._dropped += n
        self._drop_reasons[reason] = self._drop_reasons.get(reason, 0) + n

    @property
    def counts(self) -> dict[str, Any]:
        return {
            "received": self._received,
            "sent": self._sent,
            "filtered_out": self._filtered_out,
            "sampled_out": self._sampled_out,
            "dropped": self._dropped,
            "drop_reasons": dict(self._drop_reasons),
        }
