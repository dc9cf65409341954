"""Websocket consumers. Each refuses anonymous users."""
