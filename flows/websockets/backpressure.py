"""How far behind a websocket's reader is, so a slow one is dropped to instead of buffered for.

ASGI's `send` has no backpressure under daphne: a frame is written into Twisted's buffer for
the connection at once, however long that buffer already is. A client that stops reading
would make the server hold everything the tap sends it, without bound, and the viewer's
counts would call it sent. So each websocket connection gets a `SocketBacklog`: a Twisted
push producer registered on the connection's transport (Twisted's own flow-control API),
told `pauseProducing` when the transport's buffer fills and `resumeProducing` once it has
been written out. The consumer asks `full` before sending a batch: once more than
`MAX_UNSENT_BYTES` were sent since the buffer filled, batches are dropped and counted until
the reader catches up (`flows.websockets.viewer`). That bound is the per-viewer queue: the
tap and the other viewers never wait for a slow one.

`SocketBacklogMiddleware`, the outermost websocket layer in `dashboard/asgi.py`, attaches
it, since only there is `send` still daphne's own. Under a server whose `send` is not
daphne's (an in-process test communicator, another ASGI server, which has backpressure of
its own in `send`), no transport is found and `full` is never true.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings

LOGGER = logging.getLogger(__name__)

EXTENSION = "flows.socket_backlog"
# Bytes one viewer may have waiting on the server beyond what the socket itself holds:
# seconds of a flood, so a reader starved of CPU for a moment does not lose events. The
# default of `FLOWS_WS_MAX_UNSENT_BYTES` (a test with 50 viewers sets it lower, to stay cheap).
MAX_UNSENT_BYTES = 16 * 1024 * 1024


class SocketBacklog:
    """An IPushProducer for one connection's transport: is the reader keeping up?"""

    def __init__(self, max_unsent_bytes: int = MAX_UNSENT_BYTES, *, then: Any = None) -> None:
        self.max_unsent_bytes = max_unsent_bytes
        self.paused = False
        self.unsent_bytes = 0  # sent since the transport's buffer filled
        # The producer the transport had before (twisted.web's HTTP channel, which daphne
        # upgraded to a websocket): told everything, as it was before.
        self._then = then

    @property
    def full(self) -> bool:
        return self.paused and self.unsent_bytes >= self.max_unsent_bytes

    def sent(self, size: int) -> None:
        """A frame of `size` bytes was handed to the server."""
        if self.paused:
            self.unsent_bytes += size

    # --- Twisted's IPushProducer, called by the transport ---------------------------------------

    def pauseProducing(self) -> None:  # Twisted's names, Twisted's calls
        self.paused = True
        if self._then is not None:
            self._then.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        self.unsent_bytes = 0
        if self._then is not None:
            self._then.resumeProducing()

    def stopProducing(self) -> None:  # the connection is gone
        self.paused = False
        self.unsent_bytes = 0
        if self._then is not None:
            self._then.stopProducing()

    @classmethod
    def for_daphne_send(cls, send: Any, max_unsent_bytes: int = MAX_UNSENT_BYTES) -> SocketBacklog:
        """A backlog watching the transport behind daphne's `send`, if it is daphne's.

        Daphne's `send` is `functools.partial(server.handle_reply, protocol)`; the protocol's
        `transport` is Twisted's TCP (or TLS) transport, which takes one streaming producer:
        twisted.web's HTTP channel has registered itself already, so the backlog takes its
        place and passes every call on to it.
        """
        args = getattr(send, "args", ())
        transport = getattr(args[0], "transport", None) if args else None
        if transport is None or not hasattr(transport, "registerProducer"):
            return cls()
        previous = getattr(transport, "producer", None)
        if previous is not None and not getattr(transport, "streamingProducer", False):
            return cls()  # a pull producer: not ours to wrap
        backlog = cls(max_unsent_bytes, then=previous)
        try:
            if previous is not None:
                transport.unregisterProducer()
            transport.registerProducer(backlog, True)
        except RuntimeError:
            LOGGER.warning("could not watch a websocket's send buffer", exc_info=True)
            return cls()
        return backlog


def socket_backlog(scope: Mapping[str, Any]) -> SocketBacklog:
    """The connection's backlog (one that never fills when no middleware attached one)."""
    backlog = (scope.get("extensions") or {}).get(EXTENSION)
    return backlog if isinstance(backlog, SocketBacklog) else SocketBacklog()


class SocketBacklogMiddleware:
    """Puts a `SocketBacklog` for the connection into the scope's `extensions`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        extensions = {**(scope.get("extensions") or {})}
        extensions[EXTENSION] = SocketBacklog.for_daphne_send(
            send, settings.FLOWS_WS_MAX_UNSENT_BYTES
        )
        return await self.inner({**scope, "extensions": extensions}, receive, send)
