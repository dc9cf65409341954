"""`/ws/tap/?vhost=<name>&format=json`: the tap's events as JSON, for programs.

Session-authenticated (anonymous connections are refused at the handshake). Query
parameters: `vhost` (default `/`), `format=json` (the only format), `mode` (`auto`,
`bindings`, `firehose`), `max_rate` (events per second sent; the rest is sampled out and
counted) and the filter parameters of `flows.tap.filters`, applied before sampling.

Messages sent (all JSON objects):
- `{"type": "batch", "vhost", "events": [...], "counts": {"tap": {...}, "viewer": {...}}}`
- `{"type": "status", "vhost", "status": {...}, "counts": {...}}` on changes and about 1/s
- `{"type": "error", "field": str | null, "message": str}` before closing on bad input
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from flows.tap.filters import EventFilter, FilterError
from flows.tap.viewer import TapRefused, TapTicket, ViewerStream, join_tap, leave_tap

LOGGER = logging.getLogger(__name__)

# Close codes in the 4000 range are the application's own.
CLOSE_BAD_REQUEST = 4400
CLOSE_FORBIDDEN = 4403
MAX_RATE_CEILING = 10_000


def _single_params(query_string: bytes) -> dict[str, str]:
    parsed = parse_qs(query_string.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def parse_max_rate(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RATE_CEILING:
        raise FilterError("max_rate", f"must be a whole number from 1 to {MAX_RATE_CEILING}")
    return int(raw)


class TapJsonConsumer(AsyncWebsocketConsumer):
    ticket: TapTicket | None = None
    stream: ViewerStream | None = None
    vhost: str = "/"

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused (403)
            return
        params = _single_params(self.scope.get("query_string", b""))
        await self.accept()
        try:
            if params.get("format", "json") != "json":
                raise FilterError("format", "only format=json is served here")
            event_filter = EventFilter.from_params(params)
            max_rate = parse_max_rate(params.get("max_rate"), settings.FLOWS_TAP_VIEWER_MAX_RATE)
        except FilterError as exc:
            await self._refuse(exc.message, field=exc.field, code=CLOSE_BAD_REQUEST)
            return
        self.vhost = params.get("vhost") or "/"
        self.stream = ViewerStream(event_filter, max_events_per_second=max_rate)
        try:
            self.ticket = await join_tap(self, self.vhost, user, params.get("mode") or "auto")
        except TapRefused as exc:
            await self._refuse(exc.message, field="mode", code=CLOSE_FORBIDDEN)

    async def _refuse(self, message: str, *, field: str | None, code: int) -> None:
        await self.send(text_data=json.dumps({"type": "error", "field": field, "message": message}))
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            await leave_tap(ticket)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """Programs only listen; anything they send is ignored."""

    def _counts(self, status: dict[str, Any]) -> dict[str, Any]:
        assert self.stream is not None
        return {"tap": status.get("counts") or {}, "viewer": self.stream.counts}

    async def tap_batch(self, message: dict[str, Any]) -> None:
        if self.stream is None or message.get("vhost") != self.vhost:
            return
        events = self.stream.process_batch(message)
        status = message.get("status") or {}
        await self.send(
            text_data=json.dumps(
                {
                    "type": "batch",
                    "vhost": self.vhost,
                    "events": events,
                    "counts": self._counts(status),
                },
                ensure_ascii=False,
            )
        )

    async def tap_status(self, message: dict[str, Any]) -> None:
        if self.stream is None or message.get("vhost") != self.vhost:
            return
        self.stream.process_status(message)
        status = message.get("status") or {}
        await self.send(
            text_data=json.dumps(
                {
                    "type": "status",
                    "vhost": self.vhost,
                    "status": status,
                    "counts": self._counts(status),
                },
                ensure_ascii=False,
            )
        )
