"""`/ws/tap/?vhost=<name>&format=json`: the tap's events as JSON, for programs.

Query parameters: `vhost` (default `/`), `format=json` (the only format), `mode` (`auto`,
`bindings`, `firehose`), `max_rate` (events per second sent; the rest is sampled out and
counted) and the filter parameters of `flows.tap.filters`, applied before sampling.

Messages sent (all JSON objects):
- `{"type": "batch", "vhost", "events": [...], "counts": {"tap": {...}, "viewer": {...}}}`;
  an event whose body a decoder reads (a Celery task, pickle, msgpack, ...) carries `decoded`
- `{"type": "status", "vhost", "status": {...}, "counts": {...}}` on changes and about 1/s
- `{"type": "error", "field": str | null, "message": str}` before closing with 4400 (bad
  input), 4401 (not signed in) or 4403 (tap refused)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from flows.decoding.tap_event import worth_decoding
from flows.tap.events import with_decoded
from flows.tap.filters import FilterError
from flows.tap.groups import TapBatchMessage, TapStatusMessage
from flows.websockets.query import ViewerQuery, parse_max_rate
from flows.websockets.viewer import Refusal, TapViewerConsumer


class TapJsonConsumer(TapViewerConsumer):
    def parse_query(self, params: Mapping[str, str]) -> ViewerQuery:
        if params.get("format", "json") != "json":
            raise FilterError("format", "only format=json is served here")
        max_rate = parse_max_rate(params.get("max_rate"), settings.FLOWS_TAP_VIEWER_MAX_RATE)
        return ViewerQuery.from_params(params, max_rate=max_rate)

    def refusal_frame(self, refusal: Refusal) -> str:
        return _json({"type": "error", "field": refusal.field, "message": refusal.message})

    async def batch_frame(self, message: TapBatchMessage) -> str:
        assert self.stream is not None
        events = self.stream.process_batch(message)
        if any(worth_decoding(event) for event in events):
            # On a thread: decoding a batch may take up to its budget, and the event loop
            # serves every other socket meanwhile.
            sent = await asyncio.to_thread(with_decoded, events)
        else:
            sent = list(events)
        return self._frame("batch", message.get("status"), events=sent)

    def status_frame(self, message: TapStatusMessage) -> str:
        assert self.stream is not None
        self.stream.process_status(message)
        status = message.get("status") or {}
        return self._frame("status", status, status=status)

    def _frame(self, kind: str, tap_status: Mapping[str, Any] | None, **fields: Any) -> str:
        assert self.stream is not None
        tap_counts = (tap_status or {}).get("counts") or {}
        counts = {"tap": tap_counts, "viewer": self.stream.counts}
        return _json({"type": kind, "vhost": self.vhost, **fields, "counts": counts})


def _json(message: Mapping[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False)
