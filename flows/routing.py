"""Websocket routes. Each consumer lives in `flows/consumers/` and refuses anonymous users."""

from django.urls import path

from flows.live.consumer import LiveConsumer

websocket_urlpatterns: list = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
