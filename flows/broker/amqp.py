"""The AMQP connection factory: every pika connection the dashboard opens is made here.

Connections are named (`flows-dashboard: <purpose>`) so they are recognisable in the
management UI, carry explicit heartbeat and blocked-connection timeouts, and turn pika's
exceptions into the typed errors of `flows.broker.errors`.

pika connections are not thread-safe: one connection per thread, and cross-thread calls
only through `connection.add_callback_threadsafe`.

`AMQP_URL` may name several nodes of a cluster, comma-separated
(`amqp://u:p@node1:5672/,amqp://u:p@node2:5672/`): each connection tries them in order
(pika's list of parameters) and uses the first that accepts it, so a tap or publisher whose
node died reconnects to another. Without a load balancer in front of a cluster, that list
is the only way a client finds the surviving nodes.
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


def amqp_urls() -> list[str]:
    """Each node `AMQP_URL` names, in the order connections try them."""
    from django.conf import settings

    urls = [url.strip() for url in settings.AMQP_URL.split(",") if url.strip()]
    return urls or [settings.AMQP_URL]


def amqp_url() -> str:
    """The first node's URL: its credentials are the ones every node is signed in to with."""
    return amqp_urls()[0]


def amqp_where() -> str:
    """`host:port` of the AMQP endpoint (each, for a list of nodes), without credentials."""
    return ", ".join(host_and_port(url, default_port=5672) for url in amqp_urls())


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
    url: str | None = None,
) -> pika.URLParameters:
    """Parameters for a connection to `vhost`, named after its purpose, or `exact_name`
    as it is (a demo's `belery worker 2`, the name the audience reads); to the first node
    of `AMQP_URL` unless `url` names another."""
    params = pika.URLParameters(url or amqp_url())
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
    params = [
        connection_parameters(
            vhost=vhost,
            purpose=purpose,
            exact_name=exact_name,
            url=url,
            **options,  # type: ignore[arg-type]
        )
        for url in amqp_urls()
    ]
    try:
        # Tried in order; a failure is the last node's (pika re-raises it as it was).
        return pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as exc:
        masked = ", ".join(mask_url(url) for url in amqp_urls())
        LOGGER.info("AMQP connection to %s failed: %r", masked, exc)
        raise translate_connection_error(exc, vhost=vhost) from exc
    except OSError as exc:
        raise translate_connection_error(exc, vhost=vhost) from exc


def amqp_username() -> str:
    """The user AMQP connections sign in as (a demo vhost grants it permissions)."""
    return unquote(urlsplit(amqp_url()).username or "guest")  # pika's default user
