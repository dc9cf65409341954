"""Websocket routes. Each consumer lives in `flows/consumers/` and refuses anonymous users."""

from django.urls import path  # noqa: F401  (used as routes are added)

websocket_urlpatterns: list = []
