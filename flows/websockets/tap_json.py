"""`/ws/tap/?vhost=<name>&format=json`: the tap's events as JSON, for programs.

Query parameters: `vhost` (default `/`), `format=json` (the only format), `mode` (`auto`,
`bindings`, `firehose`), `max_rate` (events per second sent, the rest sampled out and
counted; by default every event is sent) and the filter parameters of
`flows.tap.filters`, applied before sampling. A client too slow to read gets what it
cannot take dropped and counted (`flows.websockets.viewer`): the tap never waits for it.

Messages sent (all JSON objects):
- `{"type": "batch", "vhost", "events": [...], "counts": {"tap": {...}, "viewer": {...}}}`;
  a JSON body's `preview` is its text as published, marked `"pretty": false` (the live page
  and recordings pretty-print it; a flood is not worth indenting for a program);
  an event whose body a decoder reads (a Celery task, pickle, msgpack, ...) carries `decoded`;
  a tap batch too large for one websocket message comes as several, all but the last with
  `"more": true`, the viewer's counts in each as of the events sent so far
- `{"type": "status", "vhost", "status": {...}, "counts": {...}}` on changes and about 1/s
- `{"type": "error", "field": str | null, "message": str}` before closing with 4400 (bad
  input), 4401 (not signed in) or 4403 (tap refused)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from flows import json_codec
from flows.decoding.tap_event import worth_decoding
from flows.tap.events import with_decoded
from flows.tap.filters import FilterError
from flows.tap.groups import TapBatchMessage, TapStatusMessage
from flows.websockets.query import ViewerQuery, parse_max_rate
from flows.websockets.viewer import Refusal, TapViewerConsumer

# Daphne refuses to send a websocket message over 1 MiB (its `websocket_max_message_size`)
# and drops the connection: a batch's events go out in messages of about this many bytes.
FRAME_EVENTS_BYTES = 512 * 1024
# One event alone above this cannot be sent at all (FLOWS_TAP_PREVIEW_LIMIT raised far).
MAX_EVENT_BYTES = 900 * 1024
EVENT_TOO_LARGE = "event too large for a websocket message"


class TapJsonConsumer(TapViewerConsumer):
    pretty_bodies = False  # programs get JSON bodies as published

    def parse_query(self, params: Mapping[str, str]) -> ViewerQuery:
        if params.get("format", "json") != "json":
            raise FilterError("format", "only format=json is served here")
        # Programs get every event unless they ask for a sample; the live page keeps its cap.
        max_rate = parse_max_rate(params.get("max_rate"))
        return ViewerQuery.from_params(params, max_rate=max_rate)

    def refusal_frame(self, refusal: Refusal) -> str:
        return _json({"type": "error", "field": refusal.field, "message": refusal.message})

    async def batch_frames(self, message: TapBatchMessage) -> list[str]:
        assert self.stream is not None
        events = self.stream.process_batch(message)
        sent: list[Mapping[str, Any]] = list(events)
        if any(worth_decoding(event) for event in events):
            # On a thread: decoding a batch may take up to its budget, and the event loop
            # serves every other socket meanwhile.
            sent = await asyncio.to_thread(with_decoded, events)
        encoded = []
        for event in sent:
            data = json_codec.dumps_bytes(event)
            if len(data) > MAX_EVENT_BYTES:
                self.stream.count_dropped(1, EVENT_TOO_LARGE, already_processed=True)
            else:
                encoded.append(data)
        chunks = _chunks(encoded, FRAME_EVENTS_BYTES)
        tap_counts = json_codec.dumps_bytes(((message.get("status") or {}).get("counts")) or {})
        head = b'{"type":"batch","vhost":' + json_codec.dumps_bytes(self.vhost) + b',"events":['
        counts = self.stream.counts
        later = len(encoded)  # events in this message and the ones after it
        frames = []
        for index, chunk in enumerate(chunks):
            later -= len(chunk)
            # As of the events sent so far: those still to come are not received yet.
            viewer = {**counts, "received": counts["received"] - later}
            viewer["sent"] = counts["sent"] - later
            more = b'"more":true,' if index < len(chunks) - 1 else b""
            frames.append(
                (
                    head
                    + b",".join(chunk)
                    + b"],"
                    + more
                    + b'"counts":{"tap":'
                    + tap_counts
                    + b',"viewer":'
                    + json_codec.dumps_bytes(viewer)
                    + b"}}"
                ).decode("utf-8")
            )
        return frames

    def status_frame(self, message: TapStatusMessage) -> str:
        assert self.stream is not None
        status = message.get("status") or {}
        counts = {"tap": status.get("counts") or {}, "viewer": self.stream.counts}
        return _json({"type": "status", "vhost": self.vhost, "status": status, "counts": counts})


def _chunks(encoded: list[bytes], budget: int) -> list[list[bytes]]:
    """`encoded` in runs of about `budget` bytes at most (an event is never split); always
    at least one run, so an empty batch still sends its counts."""
    chunks: list[list[bytes]] = [[]]
    size = 0
    for data in encoded:
        if chunks[-1] and size + len(data) > budget:
            chunks.append([])
            size = 0
        chunks[-1].append(data)
        size += len(data) + 1
    return chunks


def _json(message: Mapping[str, Any]) -> str:
    return json_codec.dumps_bytes(message).decode("utf-8")
