"""Who may publish where: the permission (`flows.access`) and the staging allow-list of exchanges.

The allow-list (`FLOWS_PUBLISH_EXCHANGES`) holds shell-style patterns (`demo.*`), matched
case-sensitively against the exchange name. The default exchange has no name; in the
allow-list it is `amq.default`, the name RabbitMQ itself accepts for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from flows import access
from flows.access import Action
from flows.topology.records import DEFAULT_EXCHANGE_ALIAS

PUBLISH_PERMISSION = access.permission_name(Action.PUBLISH)


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


def permission_refusal(user, vhost: str | None = None) -> str | None:
    """Why `user` may not publish at all (or to `vhost`), or None when they may."""
    refusal = access.refusal(user, Action.PUBLISH, vhost)
    return refusal.message if refusal is not None else None
