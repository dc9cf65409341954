"""Websocket routes. Each consumer lives in `flows/consumers/` and refuses anonymous users."""

from django.urls import path

from flows.consumers.tap_json import TapJsonConsumer
from flows.live.consumer import LiveConsumer

websocket_urlpatterns: list = [
    path("ws/tap/", TapJsonConsumer.as_asgi()),
    path("ws/live/", LiveConsumer.as_asgi()),
]
