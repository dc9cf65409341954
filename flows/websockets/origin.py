"""The websocket origin check: only pages of the dashboard's own origins may open a socket.

Channels' `AllowedHostsOriginValidator` refuses a foreign origin at the handshake (HTTP 403),
which a browser reports as close code 1006, and htmx's ws extension retries 1006 forever. A
page that meets this is almost always the dashboard itself behind a proxy whose origin is not
configured, so it must say why and stop: the socket is accepted and at once closed with
`CLOSE_FOREIGN_ORIGIN`, before the session is read or any consumer runs, so a foreign page
learns nothing and gets nothing.

Allowed: the hosts of `ALLOWED_HOSTS` (any scheme and port, as Channels matches them) and the
origins of `CSRF_TRUSTED_ORIGINS` (the proxy's, when it serves the dashboard on another one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import ParseResult, urlparse

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.security.websocket import OriginValidator
from django.conf import settings

from flows.websockets.close_codes import CLOSE_FOREIGN_ORIGIN

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable
    from channels.consumer import _ChannelScope


class _ForeignOriginRefused(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_FOREIGN_ORIGIN)


class CheckedOrigin(OriginValidator):
    """`OriginValidator` that refuses with a close code the page explains (see above)."""

    async def __call__(
        self, scope: _ChannelScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> Any:
        if self.valid_origin(_origin(scope)):
            # An ASGI 3 application here (Channels' middleware stack); the stubs allow ASGI 2.
            application: Any = self.application
            return await application(scope, receive, send)
        return await _ForeignOriginRefused()(scope, receive, send)


def _origin(scope: _ChannelScope) -> ParseResult | None:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            try:
                return urlparse(value.decode("latin1"))
            except (UnicodeDecodeError, ValueError):
                return None
    return None


def allowed_origins() -> list[str]:
    return [*settings.ALLOWED_HOSTS, *settings.CSRF_TRUSTED_ORIGINS]


def origin_checked(application: Any) -> CheckedOrigin:
    """Wrap the websocket application in the origin check, from the settings."""
    return CheckedOrigin(application, allowed_origins())
