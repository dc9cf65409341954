"""The websocket URL table; `dashboard/asgi.py` mounts it behind the origin check and sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from channels.consumer import AsyncConsumer
from django.urls import path

from flows.websockets.live import LiveConsumer
from flows.websockets.tap_json import TapJsonConsumer

if TYPE_CHECKING:
    from channels.routing import URLRouter, _ExtendedURLPattern


def _websocket_path(route: str, consumer: type[AsyncConsumer]) -> _ExtendedURLPattern:
    """`path(route, consumer.as_asgi())`, as Channels' routing docs write it.

    The casts are for the stubs, which disagree: django-stubs type `path()`'s view as an
    HTTP view, and types-channels want their own pattern type in a `URLRouter`. At run time
    it is Django's URLPattern around the consumer's ASGI application, as Channels expects.
    """
    return cast("_ExtendedURLPattern", path(route, cast("Any", consumer.as_asgi())))


websocket_urlpatterns: list[_ExtendedURLPattern | URLRouter] = [
    _websocket_path("ws/tap/", TapJsonConsumer),
    _websocket_path("ws/live/", LiveConsumer),
]
