"""The management-API client against the real broker, and against things that are not it."""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings

from flows.broker.errors import (
    BrokerAuthFailed,
    BrokerNotFound,
    BrokerRefused,
    BrokerUnreachable,
    ManagementPluginMissing,
)
from flows.broker.management_api import ManagementClient, api_path
from tests.support.live_server import free_port


def client_for(url: str, *, user: str = "", password: str = "") -> ManagementClient:
    return ManagementClient(
        url,
        user or settings.RABBITMQ_API_USER,
        password or settings.RABBITMQ_API_PASSWORD,
        timeout=2,
    )


@pytest.mark.parametrize(
    ("segments", "path"),
    [
        (("overview",), "api/overview"),
        (("vhosts", "/"), "api/vhosts/%2F"),
        (("queues", "/", "a/b%2F<c>"), "api/queues/%2F/a%2Fb%252F%3Cc%3E"),
        (("exchanges", "demo", "with space.é"), "api/exchanges/demo/with%20space.%C3%A9"),
    ],
)
def test_api_path_encodes_every_segment(segments, path):
    assert api_path(*segments) == path


def test_overview_reports_the_real_broker(management_client: ManagementClient):
    overview = management_client.overview()
    assert overview.rabbitmq_version[0].isdigit()
    assert overview.node.startswith("rabbit@")
    assert overview.erlang_version != "unknown"


def test_vhost_lifecycle_and_names_with_awkward_characters(management_client: ManagementClient):
    name = f"flows-test-{uuid.uuid4().hex[:6]} a/b%2F<c>é"
    management_client.declare_vhost(name)
    try:
        assert name in [vhost.name for vhost in management_client.vhosts()]
        assert management_client.vhost(name).name == name
    finally:
        management_client.remove_vhost(name)
    with pytest.raises(BrokerNotFound):
        management_client.vhost(name)


def test_tracing_flag_round_trips(management_client: ManagementClient, scratch_vhost: str):
    assert management_client.vhost(scratch_vhost).tracing is False
    management_client.set_tracing(scratch_vhost, enabled=True)
    assert management_client.vhost(scratch_vhost).tracing is True
    management_client.set_tracing(scratch_vhost, enabled=False)
    assert management_client.vhost(scratch_vhost).tracing is False


def test_paged_listing_collects_every_page(management_client: ManagementClient, scratch_vhost: str):
    # More queues than one page of the API holds would be slow to declare; the page size is
    # fixed at the API's maximum, so check the pager walks pages by declaring a few and
    # asking for page 1 of a listing that the API pages.
    import pika

    from flows.broker.amqp import connection_parameters

    connection = pika.BlockingConnection(
        connection_parameters(vhost=scratch_vhost, purpose="test pager")
    )
    try:
        channel = connection.channel()
        for index in range(7):
            channel.queue_declare(f"q{index}", auto_delete=True)
        names = [q["name"] for q in management_client.queues(scratch_vhost)]
        assert sorted(names) == [f"q{index}" for index in range(7)]
    finally:
        connection.close()


def test_lists_keep_only_the_columns_asked_for(
    management_client: ManagementClient, scratch_vhost: str
):
    management_client.declare_queue(scratch_vhost, "kept", arguments={"x-max-length": 3})
    management_client.declare_exchange(scratch_vhost, "ex", exchange_type="fanout")
    assert management_client.queues(scratch_vhost, columns="name", disable_stats=True) == [
        {"name": "kept"}
    ]
    exchanges = management_client.exchanges(scratch_vhost, columns="name,type")
    assert {"name": "ex", "type": "fanout"} in exchanges
    assert all(item.keys() == {"name", "type"} for item in exchanges)


def test_a_queue_reads_back_with_its_settings(
    management_client: ManagementClient, scratch_vhost: str
):
    management_client.declare_queue(scratch_vhost, "a/b%2F<c>", arguments={"x-max-length": 3})
    queue = management_client.queue(scratch_vhost, "a/b%2F<c>")
    assert (queue["name"], queue["arguments"]) == ("a/b%2F<c>", {"x-max-length": 3})
    with pytest.raises(BrokerNotFound):
        management_client.queue(scratch_vhost, "no-such-queue")


def test_closed_port_is_unreachable_and_names_no_password():
    client = client_for(f"http://127.0.0.1:{free_port()}/", password="s3cret-pw")
    with client, pytest.raises(BrokerUnreachable) as raised:
        client.overview()
    assert raised.value.message.startswith("RabbitMQ management API unreachable at 127.0.0.1:")
    assert "s3cret-pw" not in raised.value.message


def test_wrong_password_is_an_auth_failure():
    client = client_for(settings.RABBITMQ_API_URL, password="definitely-wrong")
    with client, pytest.raises(BrokerAuthFailed, match="refused user"):
        client.overview()


def test_amqp_port_is_not_the_management_api():
    client = client_for("http://127.0.0.1:5672/")
    with client, pytest.raises(ManagementPluginMissing, match="rabbitmq_management"):
        client.overview()


class _NotRabbit(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>nginx default page</html>"
        self.send_response(404 if self.path.startswith("/api/") else 200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def some_other_web_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotRabbit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_another_web_server_means_the_plugin_is_missing(some_other_web_server: str):
    client = client_for(some_other_web_server)
    with client, pytest.raises(ManagementPluginMissing):
        client.overview()


def test_unknown_vhost_is_not_found(management_client: ManagementClient):
    with pytest.raises(BrokerNotFound):
        management_client.exchanges(f"no-such-vhost-{uuid.uuid4().hex}")


def test_refused_request_carries_the_status(
    management_client: ManagementClient, scratch_vhost: str
):
    # Declaring an exchange of a type the broker does not know is refused with a reason.
    with pytest.raises(BrokerRefused) as raised:
        management_client.declare_exchange(scratch_vhost, "x", exchange_type="no-such-type")
    assert raised.value.status is not None
    assert 400 <= raised.value.status < 600
