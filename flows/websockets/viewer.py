"""What both tap websockets share: who may watch, joining the tap, refusing with a reason.

One rule for every connection:

- an anonymous visitor is accepted only to be told to sign in, then closed with 4401 (see
  `close_codes`: refusing the handshake would look like a network fault to the page);
- on a consumer that `accepts_audience_links` (the live page's), `audience=<token>` stands
  in for the session and its role: a link that does not work is told why and closed with
  4410, another vhost than the link's with 4403; the socket joins the link's group, so
  revoking the link (`flows.audience.revoke_link`) closes it with 4410, and it closes so
  when the link expires;
- a user `flows.access` does not let view the vhost (no role, or a vhost outside their
  limits) with a frame saying why, then 4403;
- a query that cannot be used is answered with a frame naming the parameter, then 4400;
- a tap the user may not have (the firehose) with a frame saying why, then 4403;
- otherwise the vhost's tap is joined *before* accepting, so once the socket is open every
  batch reaches it, and left when the socket closes.

Subclasses say how a refusal, a batch and a status read on their socket; the work itself
(filtering, sampling and counting) is `flows.tap.viewer.ViewerStream`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from flows import access, audience
from flows.access import Action
from flows.tap.filters import FilterError
from flows.tap.groups import TapBatchMessage, TapProcessStartedMessage, TapStatusMessage
from flows.tap.viewer import (
    SIGN_IN_TO_WATCH,
    SLOW_VIEWER,
    TapRefused,
    TapTicket,
    ViewerStream,
    join_tap,
    leave_tap,
    rejoin_tap,
)
from flows.websockets.backpressure import SocketBacklog, socket_backlog
from flows.websockets.close_codes import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_LINK_ENDED,
    CLOSE_NOT_SIGNED_IN,
)
from flows.websockets.query import AUDIENCE_PARAM, ViewerQuery, query_params


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
    # Whether `audience=<token>` may stand in for a session here (`flows.audience`).
    accepts_audience_links: bool = False
    # Whether JSON bodies are pretty-printed for this socket (`ViewerStream.pretty_bodies`).
    pretty_bodies: bool = True
    audience_group: str | None = None
    audience_expiry: asyncio.Task | None = None
    closing: bool = False

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
        params = query_params(self.scope)
        token = params.pop(AUDIENCE_PARAM, None) if self.accepts_audience_links else None
        user = self.scope.get("user")
        if token is not None:
            refusal = await self._admit_audience(token, params)
            if refusal is not None:
                await self.refuse(refusal)
                return
        elif user is None or not user.is_authenticated:
            await self.refuse(Refusal(CLOSE_NOT_SIGNED_IN, SIGN_IN_TO_WATCH))
            return
        try:
            query = self.parse_query(params)
        except FilterError as exc:
            await self.refuse(Refusal(CLOSE_BAD_REQUEST, exc.message, exc.field))
            return
        self.vhost = query.vhost
        # An audience link is its own permission, bound to its vhost (`_admit_audience`).
        if token is None:
            denied = await database_sync_to_async(access.refusal)(user, Action.VIEW, self.vhost)
            if denied is not None:
                await self.refuse(Refusal(CLOSE_FORBIDDEN, denied.message, "vhost"))
                return
        self.backlog = socket_backlog(self.scope)
        selection = query.selection
        self.stream = ViewerStream(
            query.event_filter,
            max_events_per_second=query.max_rate,
            pretty_bodies=self.pretty_bodies,
            selection_key=selection.key,
        )
        try:
            self.ticket = await join_tap(
                self,
                self.vhost,
                user,
                mode=query.mode,
                audience=token is not None,
                selection=selection,
            )
        except TapRefused as exc:
            await self.refuse(Refusal(CLOSE_FORBIDDEN, exc.message, "mode"))
            return
        await self.accept()
        await self.joined()

    async def _admit_audience(self, token: str, params: dict[str, str]) -> Refusal | None:
        """Check an audience link and bind the query to its vhost; None when it may watch."""
        link = await database_sync_to_async(audience.find_link)(token)
        if link is None:
            return Refusal(CLOSE_LINK_ENDED, audience.UNKNOWN)
        # In the link's group before its state is read: a revocation in between still
        # reaches this socket.
        self.audience_group = audience.audience_group(link.pk)
        await self.channel_layer.group_add(self.audience_group, self.channel_name)
        problem = await database_sync_to_async(audience.recheck)(link.pk)
        if problem is not None:
            return Refusal(CLOSE_LINK_ENDED, problem)
        requested = params.get("vhost") or link.vhost
        if requested != link.vhost:
            return Refusal(
                CLOSE_FORBIDDEN, f"This audience link shows vhost {link.vhost!r} only.", "vhost"
            )
        params["vhost"] = link.vhost
        remaining = (link.expires_at - timezone.now()).total_seconds()
        self.audience_expiry = asyncio.create_task(self._end_at_expiry(remaining))
        return None

    async def _end_at_expiry(self, delay_s: float) -> None:
        await asyncio.sleep(max(0.0, delay_s))
        await self.say_and_close(Refusal(CLOSE_LINK_ENDED, audience.EXPIRED))

    async def refuse(self, refusal: Refusal) -> None:
        """Accept only to say why, then close: the page can tell this from a network fault."""
        await self.accept()
        await self.say_and_close(refusal)

    async def say_and_close(self, refusal: Refusal) -> None:
        # Once: a revocation may reach a socket its expiry (or a refusal) is closing already.
        if self.closing:
            return
        self.closing = True
        await self.send(self.refusal_frame(refusal))
        await self.close(code=refusal.code)

    async def disconnect(self, code: int) -> None:
        if self.audience_expiry is not None:
            expiry, self.audience_expiry = self.audience_expiry, None
            if expiry is not asyncio.current_task():
                expiry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await expiry
        if self.audience_group is not None:
            group, self.audience_group = self.audience_group, None
            await self.channel_layer.group_discard(group, self.channel_name)
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
        message = self.stream.from_tap(message)  # with this viewer's gaps (a restarted tap)
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
        message = self.stream.from_tap(message)
        # Batches that never came before this status count as dropped, on every socket.
        self.stream.process_status(message)
        if not self._backed_up():  # a later status says as much
            await self._send_frame(self.status_frame(message))

    async def tap_process_started(self, message: TapProcessStartedMessage) -> None:
        """A tap process (re)started: join it now, so the gap is as short as it can be."""
        if self.ticket is not None:
            await rejoin_tap(self.ticket)

    async def audience_ended(self, message: Mapping[str, Any]) -> None:
        """The audience link this socket watches through was revoked (`audience.ENDED_MESSAGE`)."""
        await self.say_and_close(Refusal(CLOSE_LINK_ENDED, str(message.get("message", ""))))

    def _watches(self, message: Mapping[str, Any]) -> bool:
        return self.stream is not None and message.get("vhost") == self.vhost

    def _backed_up(self) -> bool:
        return self.backlog is not None and self.backlog.full

    async def _send_frame(self, frame: str | None) -> None:
        if frame is not None:
            await self.send(frame)
            if self.backlog is not None:
                self.backlog.sent(len(frame))
