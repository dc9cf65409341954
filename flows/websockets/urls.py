"""The websocket URL table; `dashboard/asgi.py` mounts it behind the origin check and sessions."""

from __future__ import annotations

from django.urls import URLPattern, path

from flows.websockets.live import LiveConsumer
from flows.websockets.tap_json import TapJsonConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/tap/", TapJsonConsumer.as_asgi()),
    path("ws/live/", LiveConsumer.as_asgi()),
]
