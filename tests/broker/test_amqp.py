"""The AMQP connection factory against the real broker."""

from __future__ import annotations

import pytest
from django.test import override_settings

from flows.broker.amqp import connection_name, open_blocking_connection
from flows.broker.errors import BrokerAuthFailed, BrokerRefused, BrokerUnreachable
from tests.support.live_server import free_port
from tests.support.waiting import eventually


def test_opens_a_named_connection_to_the_vhost(broker_vhost: str, management_client):
    connection = open_blocking_connection(vhost=broker_vhost, purpose="factory test")
    try:
        channel = connection.channel()
        declared = channel.queue_declare("", exclusive=True)
        assert declared.method.queue.startswith("amq.gen-")
        # The name shows in the management API, so people can tell our connections apart.
        eventually(
            lambda: (
                connection_name("factory test")
                in [
                    c.get("client_properties", {}).get("connection_name")
                    for c in management_client.connections()
                ]
            ),
            what="the connection listed under its name",
            interval=0.5,
        )
    finally:
        connection.close()


def test_closed_port_is_unreachable():
    closed_port_url = f"amqp://guest:s3cret@127.0.0.1:{free_port()}/"
    with override_settings(AMQP_URL=closed_port_url), pytest.raises(BrokerUnreachable) as raised:
        open_blocking_connection(vhost="/", purpose="test")
    assert "s3cret" not in raised.value.message
    assert "127.0.0.1:" in raised.value.message


def test_wrong_password_is_an_auth_failure():
    wrong_password_url = "amqp://guest:wrong-password@127.0.0.1:5672/"
    with override_settings(AMQP_URL=wrong_password_url), pytest.raises(BrokerAuthFailed):
        open_blocking_connection(vhost="/", purpose="test")


def test_unknown_vhost_is_refused():
    with pytest.raises(BrokerRefused, match="no-such-vhost"):
        open_blocking_connection(vhost="no-such-vhost-for-flows", purpose="test")
