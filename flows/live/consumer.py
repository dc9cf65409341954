"""The live page's websocket: `/ws/live/?vhost=<v>&<filter params>`.

It joins the vhost's tap, filters and samples each tap batch for this viewer (filters first,
so the messages a person asked for are never sampled away), and answers each batch with one
websocket frame of HTML fragments for htmx's ws extension: new rows prepended to `#feed`,
the counters and the tap status replaced. Rendering and accounting live in the pure modules
next to this one; this class only wires them to the socket.

Close codes: 4401 not signed in, 4400 bad filter, 4403 tap refused; htmx's ws extension
reconnects only on 1006/1011/1012/1013, so these stay closed, while a server going away
(1006) or restarting (1012) is reconnected to.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from flows.live.counters import LiveCounts, RateMeter, TapDropTracker, live_counts
from flows.live.prediction import predict_event
from flows.live.rows import Row, build_row
from flows.tap.filters import EventFilter, FilterError
from flows.tap.viewer import TapRefused, ViewerStream, join_tap, leave_tap
from flows.topology.cache import topology_cache

LOGGER = logging.getLogger(__name__)

CLOSE_NOT_SIGNED_IN = 4401
CLOSE_BAD_FILTER = 4400
CLOSE_TAP_REFUSED = 4403
TAP_MODES = ("auto", "bindings", "firehose")
# Frames that carry only counters are sent at most this often; rows are never held back.
COUNTERS_ONLY_INTERVAL_S = 0.25


def query_params(scope: dict[str, Any]) -> dict[str, str]:
    """The last value of each query parameter (a form sends each name once)."""
    raw = scope.get("query_string", b"").decode("utf-8", errors="replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


class LiveConsumer(AsyncWebsocketConsumer):
    ticket: Any = None
    stream: ViewerStream | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept only to say why, so the page can tell "sign in again" from a network fault.
            await self.accept()
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        params = query_params(self.scope)
        self.vhost = params.get("vhost") or "/"
        mode = params.get("mode") or "auto"
        try:
            if mode not in TAP_MODES:
                raise FilterError("mode", "must be auto, bindings or firehose")
            event_filter = EventFilter.from_params(params)
        except FilterError as exc:
            await self.accept()
            await self.send(render_to_string("flows/live/_filter_error.html", {"error": exc}))
            await self.close(code=CLOSE_BAD_FILTER)
            return

        self.stream = ViewerStream(
            event_filter, max_events_per_second=settings.FLOWS_TAP_VIEWER_MAX_RATE
        )
        self.tap_drops = TapDropTracker()
        self.rate = RateMeter()
        self.last_status_json = ""
        self.last_counts: LiveCounts | None = None
        self.last_sent_at = 0.0
        try:
            # Joined before accepting: once the page sees the socket open, batches reach it.
            self.ticket = await join_tap(self, self.vhost, user, mode=mode)
        except TapRefused as exc:
            await self.accept()
            await self.send(
                render_to_string(
                    "flows/live/_tap_status.html",
                    {"status": {"state": "error", "error": exc.message}, "oob": True},
                )
            )
            await self.close(code=CLOSE_TAP_REFUSED)
            return
        await self.accept()
        # Warm the topology cache: bindings-mode rows are predicted from it.
        await topology_cache.latest(self.vhost)

    async def disconnect(self, code: int) -> None:
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            await leave_tap(ticket)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing the server needs; pause and clear are the page's own."""

    # --- from the tap (contract §2) --------------------------------------------------------------

    async def tap_batch(self, message: dict[str, Any]) -> None:
        if self.stream is None or message.get("vhost") != self.vhost:
            return
        # process_batch also counts batches this viewer missed (sequence numbers jump).
        shown = self.stream.process_batch(message)
        rows = await self.rows_for(shown)
        await self.send_update(message.get("status"), rows)

    async def tap_status(self, message: dict[str, Any]) -> None:
        if self.stream is None or message.get("vhost") != self.vhost:
            return
        await self.send_update(message.get("status"), [])

    # --- rendering -------------------------------------------------------------------------------

    async def rows_for(self, events: list[dict[str, Any]]) -> list[Row]:
        if not events:
            return []
        needs_prediction = any(
            e.get("kind") == "publish" and e.get("routed_queues") is None for e in events
        )
        # Wait for the first topology only when a row depends on it (bindings mode).
        topology = await topology_cache.latest(self.vhost, wait=needs_prediction)
        rows = []
        for event in events:
            # Firehose rows use the dry-run only to draw exchange-to-exchange chains.
            prediction = predict_event(topology, event) if event.get("kind") == "publish" else None
            rows.append(build_row(event, prediction=prediction, topology=topology))
        if any(row.kind == "deliver" and row.consumer_tag is None for row in rows):
            # A consumer newer than the cached topology: learn it for the next deliveries.
            topology_cache.refresh_soon(self.vhost)
        # Newest first: the batch is prepended to the feed as one block.
        rows.reverse()
        return rows

    async def send_update(self, status: Any, rows: list[Row]) -> None:
        status = status if isinstance(status, dict) else {}
        counts_from_tap = status.get("counts") if isinstance(status.get("counts"), dict) else {}
        tap_dropped = self.tap_drops.observe(counts_from_tap.get("overflow_dropped"))
        viewer_counts = self.stream.counts if self.stream is not None else {}
        total = int(viewer_counts.get("received", 0)) + tap_dropped
        counts = live_counts(viewer_counts, tap_dropped=tap_dropped, rate=self.rate.observe(total))

        status_json = json.dumps(
            {key: status.get(key) for key in ("mode", "state", "coverage", "gaps", "error")},
            sort_keys=True,
            default=str,
        )
        status_changed = bool(status) and status_json != self.last_status_json
        now = time.monotonic()
        quiet = counts == self.last_counts or now - self.last_sent_at < COUNTERS_ONLY_INTERVAL_S
        if not rows and not status_changed and quiet:
            return
        self.last_counts = counts
        self.last_sent_at = now
        if status_changed:
            self.last_status_json = status_json
        html = render_to_string(
            "flows/live/_update.html",
            {
                "rows": rows,
                "counts": counts,
                "status": status if status_changed else None,
                "oob": True,
            },
        )
        await self.send(html)
