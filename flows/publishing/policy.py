"""Who may publish where: the permission and the staging allow-list of exchanges.

The allow-list (`FLOWS_PUBLISH_EXCHANGES`) holds shell-style patterns (`demo.*`), matched
case-sensitively against the exchange name. The default exchange has no name; in the
allow-list it is `amq.default`, the name RabbitMQ itself accepts for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from flows.topology.records import DEFAULT_EXCHANGE_ALIAS

PUBLISH_PERMISSION = "flows.publish_messages"


class PublishForbidden(Exception):
    """This user may not publish this message; `field` names the field to blame, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def exchange_allowed(exchange: str, patterns: Sequence[str]) -> bool:
    """Whether the allow-list lets a publish to `exchange` through (empty list: all)."""
    if not patterns:
        return True
    name = exchange or DEFAULT_EXCHANGE_ALIAS
    return any(fnmatchcase(name, pattern) for pattern in patterns)


def refusal_outside_allow_list(exchange: str, patterns: Sequence[str]) -> str | None:
    if exchange_allowed(exchange, patterns):
        return None
    shown = exchange or f"the default exchange ({DEFAULT_EXCHANGE_ALIAS})"
    return (
        f"Publishing to {shown} is not allowed here: this dashboard publishes only to "
        f"exchanges matching {', '.join(patterns)} (setting FLOWS_PUBLISH_EXCHANGES)"
    )


def permission_refusal(user) -> str | None:
    """Why `user` may not publish at all, or None when they may."""
    if not getattr(user, "is_authenticated", False):
        return "Sign in to publish."
    if not user.has_perm(PUBLISH_PERMISSION):
        return (
            "Your account may not publish messages: an administrator can grant the "
            "“Can publish messages” permission (flows.publish_messages)."
        )
    return None
