"""Who is who in the tests: dashboard accounts in their roles, the test user's password, and
the users the dashboard connects as."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings

TEST_PASSWORD = "correct horse battery staple"


def make_user(
    username: str,
    *,
    role: str | None = "viewer",
    password: str | None = None,
    vhosts: list[str] | None = None,
    **fields: Any,
):
    """A dashboard account in `role` (None: no role), limited to `vhosts` when given.

    No password by default: hashing one costs more than most requests under test.
    """
    from django.contrib.auth import get_user_model

    from flows import access

    user = get_user_model().objects.create_user(username=username, password=password, **fields)
    if role is not None:
        access.set_role(user, role)
    if vhosts is not None:
        access.set_vhost_limit(user, vhosts)
    return user


def give_role(user, role: str) -> None:
    from flows import access

    access.set_role(user, role)


def amqp_username() -> str:
    return unquote(urlsplit(settings.AMQP_URL).username or "guest")


def dashboard_users() -> set[str]:
    """The users the dashboard connects as: a test's vhost grants them everything."""
    return {settings.RABBITMQ_API_USER, amqp_username()}
