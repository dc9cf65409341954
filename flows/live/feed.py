"""What one live page is sent: a frame of HTML fragments per tap batch, for htmx's ws extension.

Each frame prepends the batch's rows (newest first) to `#feed` and replaces the counters, and
the tap's status when it changed; all out of band, so one frame updates the whole page. A
frame with no rows and nothing new is not sent, and frames that carry only counters go out at
most every `COUNTERS_ONLY_INTERVAL_S`: rows are never held back.

Bindings-mode events do not say where they went: their rows are predicted from the vhost's
topology (`flows.live.prediction`), which this feed waits for only when a row needs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.template.loader import render_to_string

from flows.live.counters import LiveCounts, RateMeter, TapDropTracker, live_counts
from flows.live.prediction import predict_event
from flows.live.rows import Row, build_row
from flows.runtime import runtime
from flows.tap.events import TapEvent
from flows.tap.viewer import ViewerStream

COUNTERS_ONLY_INTERVAL_S = 0.25
# The parts of the tap's status the page shows; a change in any of them is sent at once.
SHOWN_STATUS = ("mode", "state", "coverage", "gaps", "error")


class LiveFeed:
    """One page's feed: `stream` filters, samples and counts; this renders what it lets by."""

    def __init__(
        self, vhost: str, stream: ViewerStream, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.vhost = vhost
        self.stream = stream
        self._clock = clock
        self._tap_drops = TapDropTracker()
        self._rate = RateMeter(clock=clock)
        self._last_status_json = ""
        self._last_counts: LiveCounts | None = None
        self._last_sent_at = 0.0

    async def warm(self) -> None:
        """Load the vhost's topology now: bindings-mode rows are predicted from it."""
        await runtime().topology_cache.latest(self.vhost)

    async def batch_frame(self, message: Mapping[str, Any]) -> str | None:
        # process_batch also counts batches this viewer missed (sequence numbers jump).
        shown = self.stream.process_batch(message)
        return self.update_frame(message.get("status"), await self.rows_for(shown))

    async def rows_for(self, events: list[TapEvent]) -> list[Row]:
        """The rows for events about to be shown, newest first (prepended as one block)."""
        if not events:
            return []
        needs_prediction = any(
            e["kind"] == "publish" and e["routed_queues"] is None for e in events
        )
        # Wait for the first topology only when a row depends on it (bindings mode).
        topology = await runtime().topology_cache.latest(self.vhost, wait=needs_prediction)
        rows = []
        for event in events:
            # Firehose rows use the dry-run only to draw exchange-to-exchange chains.
            prediction = predict_event(topology, event) if event["kind"] == "publish" else None
            rows.append(build_row(event, prediction=prediction, topology=topology))
        if any(row.kind == "deliver" and row.consumer_tag is None for row in rows):
            # A consumer newer than the cached topology: learn it for the next deliveries.
            runtime().topology_cache.refresh_soon(self.vhost)
        rows.reverse()
        return rows

    def update_frame(self, status: Any, rows: list[Row]) -> str | None:
        """The frame for `rows` and the tap's `status`, or None when there is nothing to say."""
        status = status if isinstance(status, dict) else {}
        counts_from_tap = status.get("counts") if isinstance(status.get("counts"), dict) else {}
        tap_dropped = self._tap_drops.observe(counts_from_tap.get("overflow_dropped"))
        viewer_counts = self.stream.counts
        total = int(viewer_counts.get("received", 0)) + tap_dropped
        counts = live_counts(viewer_counts, tap_dropped=tap_dropped, rate=self._rate.observe(total))

        status_json = json.dumps(
            {key: status.get(key) for key in SHOWN_STATUS}, sort_keys=True, default=str
        )
        status_changed = bool(status) and status_json != self._last_status_json
        now = self._clock()
        quiet = counts == self._last_counts or now - self._last_sent_at < COUNTERS_ONLY_INTERVAL_S
        if not rows and not status_changed and quiet:
            return None
        self._last_counts = counts
        self._last_sent_at = now
        if status_changed:
            self._last_status_json = status_json
        return render_to_string(
            "flows/live/_update.html",
            {
                "rows": rows,
                "counts": counts,
                "status": status if status_changed else None,
                "oob": True,
            },
        )
