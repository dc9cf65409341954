"""Typed broker errors. Each carries a message that can be shown to a user as is.

Messages name host and port only, never credentials.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base class: something about the broker prevented the operation."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BrokerUnreachable(BrokerError):
    """Nothing answered: connection refused, timed out, or name not resolved."""


class BrokerAuthFailed(BrokerError):
    """The broker answered but refused the credentials (HTTP 401, AMQP 403 at login)."""


class ManagementPluginMissing(BrokerError):
    """Something answers on the management port, but it is not the management API."""


class BrokerNotFound(BrokerError):
    """The named vhost, exchange or queue does not exist (HTTP 404)."""


class BrokerRefused(BrokerError):
    """The broker understood and refused (403 permissions, 400 bad request, 5xx)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
