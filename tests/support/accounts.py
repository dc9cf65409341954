"""Who is who in the tests: the test user's password, and the users the dashboard connects as."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from django.conf import settings

TEST_PASSWORD = "correct horse battery staple"


def amqp_username() -> str:
    return unquote(urlsplit(settings.AMQP_URL).username or "guest")


def dashboard_users() -> set[str]:
    """The users the dashboard connects as: a test's vhost grants them everything."""
    return {settings.RABBITMQ_API_USER, amqp_username()}
