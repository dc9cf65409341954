"""Is there a broker to talk to? Used before serving, and by the test command."""

from __future__ import annotations

from flows.broker.amqp import amqp_where, open_blocking_connection
from flows.broker.errors import BrokerError
from flows.broker.management_api import ManagementClient
from flows.runtime import runtime

HOW_TO_GET_A_BROKER = """\
No usable RabbitMQ found. Start one, then run this command again:
  - with Docker:  docker compose up -d rabbitmq
  - on Debian:    sudo apt-get install rabbitmq-server
                  sudo rabbitmq-plugins enable rabbitmq_management
                  sudo rabbitmq-server -detached   (if it is not running as a service)
  - another broker: set AMQP_URL and RABBITMQ_API_URL (see the README)."""


def broker_problems(*, client: ManagementClient | None = None) -> list[str]:
    """Human-readable reasons the broker is not usable; empty when both APIs answer."""
    problems: list[str] = []
    client = client or runtime().management_client
    try:
        client.overview()
    except BrokerError as exc:
        problems.append(exc.message)
    try:
        open_blocking_connection(vhost="/", purpose="startup check").close()
    except BrokerError as exc:
        problems.append(exc.message)
    return problems


__all__ = ["HOW_TO_GET_A_BROKER", "amqp_where", "broker_problems"]
