"""What both tap websockets share: who may watch, joining the tap, refusing with a reason.

One rule for every connection:

- an anonymous visitor is accepted only to be told to sign in, then closed with 4401 (see
  `close_codes`: refusing the handshake would look like a network fault to the page);
- a query that cannot be used is answered with a frame naming the parameter, then 4400;
- a tap the user may not have (the firehose) with a frame saying why, then 4403;
- otherwise the vhost's tap is joined *before* accepting, so once the socket is open every
  batch reaches it, and left when the socket closes.

Subclasses say how a refusal, a batch and a status read on their socket; the work itself
(filtering, sampling and counting) is `flows.tap.viewer.ViewerStream`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from flows.tap.filters import FilterError
from flows.tap.groups import TapBatchMessage, TapStatusMessage
from flows.tap.viewer import (
    SIGN_IN_TO_WATCH,
    SLOW_VIEWER,
    TapRefused,
    TapTicket,
    ViewerStream,
    join_tap,
    leave_tap,
)
from flows.websockets.backpressure import SocketBacklog, socket_backlog
from flows.websockets.close_codes import CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, CLOSE_NOT_SIGNED_IN
from flows.websockets.query import ViewerQuery, query_params


@dataclass(frozen=True)
class Refusal:
    """Why a connection is being closed: its close code, a message, the parameter at fault."""

    code: int
    message: str
    field: str | None = None


class TapViewerConsumer(AsyncWebsocketConsumer):
    """A websocket watching one vhost's tap. Channel-layer handlers follow the message type."""

    ticket: TapTicket | None = None
    stream: ViewerStream | None = None
    backlog: SocketBacklog | None = None
    vhost: str = "/"

    # --- what a subclass says -------------------------------------------------------------------

    def parse_query(self, params: Mapping[str, str]) -> ViewerQuery:
        """The viewer's query; raises `FilterError`. By default at the configured rate."""
        return ViewerQuery.from_params(params, max_rate=settings.FLOWS_TAP_VIEWER_MAX_RATE)

    def refusal_frame(self, refusal: Refusal) -> str:
        raise NotImplementedError

    async def batch_frames(self, message: TapBatchMessage) -> list[str]:
        """The frames for a batch of the tap's events, in order (none: send nothing)."""
        raise NotImplementedError

    def status_frame(self, message: TapStatusMessage) -> str | None:
        """The frame for a status of the tap, or None to send nothing."""
        raise NotImplementedError

    async def joined(self) -> None:
        """Called once the tap is joined and the socket accepted."""

    # --- the connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(Refusal(CLOSE_NOT_SIGNED_IN, SIGN_IN_TO_WATCH))
            return
        try:
            query = self.parse_query(query_params(self.scope))
        except FilterError as exc:
            await self.refuse(Refusal(CLOSE_BAD_REQUEST, exc.message, exc.field))
            return
        self.vhost = query.vhost
        self.backlog = socket_backlog(self.scope)
        self.stream = ViewerStream(query.event_filter, max_events_per_second=query.max_rate)
        try:
            self.ticket = await join_tap(self, self.vhost, user, mode=query.mode)
        except TapRefused as exc:
            await self.refuse(Refusal(CLOSE_FORBIDDEN, exc.message, "mode"))
            return
        await self.accept()
        await self.joined()

    async def refuse(self, refusal: Refusal) -> None:
        """Accept only to say why, then close: the page can tell this from a network fault."""
        await self.accept()
        await self.send(self.refusal_frame(refusal))
        await self.close(code=refusal.code)

    async def disconnect(self, code: int) -> None:
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            await leave_tap(ticket)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Viewers only listen; anything they send is ignored."""

    # --- from the tap (`flows.tap.groups` describes the messages) -------------------------------

    async def tap_batch(self, message: TapBatchMessage) -> None:
        if not self._watches(message):
            return
        assert self.stream is not None
        if self._backed_up():
            # Its reader is too slow: drop (and count) rather than buffer without end.
            self.stream.drop_batch(message, SLOW_VIEWER)
            return
        for frame in await self.batch_frames(message):
            await self._send_frame(frame)

    async def tap_status(self, message: TapStatusMessage) -> None:
        if not self._watches(message):
            return
        assert self.stream is not None
        # Batches that never came before this status count as dropped, on every socket.
        self.stream.process_status(message)
        if not self._backed_up():  # a later status says as much
            await self._send_frame(self.status_frame(message))

    def _watches(self, message: Mapping[str, Any]) -> bool:
        return self.stream is not None and message.get("vhost") == self.vhost

    def _backed_up(self) -> bool:
        return self.backlog is not None and self.backlog.full

    async def _send_frame(self, frame: str | None) -> None:
        if frame is not None:
            await self.send(frame)
            if self.backlog is not None:
                self.backlog.sent(len(frame))
