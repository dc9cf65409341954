"""The AMQP connection factory: every pika connection the dashboard opens is made here.

Connections are named (`flows-dashboard: <purpose>`) so they are recognisable in the
management UI, carry explicit heartbeat and blocked-connection timeouts, and turn pika's
exceptions into the typed errors of `flows.broker.errors`.

pika connections are not thread-safe: one connection per thread, and cross-thread calls
only through `connection.add_callback_threadsafe`.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions

from flows.broker.errors import BrokerAuthFailed, BrokerError, BrokerRefused, BrokerUnreachable
from flows.broker.redact import host_and_port, mask_url

LOGGER = logging.getLogger(__name__)

CONNECTION_NAME_PREFIX = "flows-dashboard"


def amqp_url() -> str:
    from django.conf import settings

    return settings.AMQP_URL


def amqp_where() -> str:
    """`host:port` of the AMQP endpoint, without credentials."""
    return host_and_port(amqp_url(), default_port=5672)


def connection_name(purpose: str) -> str:
    return f"{CONNECTION_NAME_PREFIX}: {purpose}"


def connection_parameters(
    *,
    vhost: str,
    purpose: str,
    heartbeat: int = 30,
    blocked_connection_timeout: float = 60.0,
    connection_attempts: int = 1,
    socket_timeout: float = 5.0,
    exact_name: str | None = None,
) -> pika.URLParameters:
    """Parameters for a connection to `vhost`, named after its purpose, or `exact_name`
    as it is (a demo's `belery worker 2`, the name the audience reads)."""
    params = pika.URLParameters(amqp_url())
    params.virtual_host = vhost
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = blocked_connection_timeout
    params.connection_attempts = connection_attempts
    params.socket_timeout = socket_timeout
    params.client_properties = {"connection_name": exact_name or connection_name(purpose)}
    return params


def translate_connection_error(exc: BaseException, *, vhost: str) -> BrokerError:
    """Map a pika connection failure to a typed error with a user-facing message."""
    where = amqp_where()
    if isinstance(exc, pika.exceptions.ProbableAuthenticationError):
        return BrokerAuthFailed(f"RabbitMQ at {where} refused the AMQP credentials")
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        return BrokerRefused(
            f"RabbitMQ at {where} refused access to vhost {vhost!r} "
            "(it does not exist, or the user has no permission on it)"
        )
    return BrokerUnreachable(f"RabbitMQ unreachable at {where} (AMQP)")


def open_blocking_connection(
    *, vhost: str, purpose: str, exact_name: str | None = None, **options: float
) -> pika.BlockingConnection:
    """Open a BlockingConnection, or raise a BrokerError saying why not.

    A BlockingConnection services heartbeats only inside `process_data_events` or
    `start_consuming`: its owner must call one of them regularly.
    """
    params = connection_parameters(
        vhost=vhost,
        purpose=purpose,
        exact_name=exact_name,
        **options,  # type: ignore[arg-type]
    )
    try:
        return pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as exc:
        LOGGER.info("AMQP connection to %s failed: %r", mask_url(amqp_url()), exc)
        raise translate_connection_error(exc, vhost=vhost) from exc
    except OSError as exc:
        raise translate_connection_error(exc, vhost=vhost) from exc


def amqp_username() -> str:
    """The user AMQP connections sign in as (a demo vhost grants it permissions)."""
    return unquote(urlsplit(amqp_url()).username or "guest")  # pika's default user
