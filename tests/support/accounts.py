"""Who is who in the tests: dashboard accounts in their roles, the test user's password, and
the users the dashboard connects as."""

from __future__ import annotations

import functools
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

    No password by default: hashing one costs more than most requests under test (about
    0.6 s of CPU here). A password is hashed once per session and hashers, and the hash reused.
    """
    from django.contrib.auth import get_user_model

    from flows import access

    user = get_user_model().objects.create_user(username=username, password=None, **fields)
    if password is not None:
        user.password = hashed(password, tuple(settings.PASSWORD_HASHERS))
        user.save(update_fields=["password"])
    if role is not None:
        access.set_role(user, role)
    if vhosts is not None:
        access.set_vhost_limit(user, vhosts)
    return user


@functools.cache
def hashed(password: str, hashers: tuple[str, ...]) -> str:
    """`password` as the first of `hashers` stores it: what `set_password` would store, but
    with one salt for every account of the session given it (`hashers` is the cache's key:
    a test may change the setting)."""
    from django.contrib.auth.hashers import make_password

    return make_password(password)


def give_role(user, role: str) -> None:
    from flows import access

    access.set_role(user, role)


def amqp_username() -> str:
    return unquote(urlsplit(settings.AMQP_URL).username or "guest")


def dashboard_users() -> set[str]:
    """The users the dashboard connects as: a test's vhost grants them everything."""
    return {settings.RABBITMQ_API_USER, amqp_username()}
