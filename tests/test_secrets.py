"""The secrets sweep: the dashboard runs as a broker user of its own with a distinctive
password, every kind of output is captured while pages, the JSON API (its errors too: an
unknown vhost, a vhost the broker refuses this user, a wrong password), a publish and a
websocket session are exercised, and the password is in none of it.

What is captured: every response (status line, headers, body) and websocket frame, the
served dashboard's whole output at DEBUG, and this process's log records at DEBUG (the
in-process part runs the same views with the same credentials)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import pytest

from flows.broker.management_api import ManagementClient
from flows.runtime import Runtime
from tests.support.accounts import TEST_PASSWORD
from tests.support.broker_admin import create_user, create_vhost_for, delete_user
from tests.support.publishing import grant_publish
from tests.support.tap_harness import amqp_channel
from tests.support.tap_socket import is_running, open_tap, receive_until, run_async, session_cookie

pytestmark = pytest.mark.usefixtures("transactional_db")


@dataclass
class BrokerUser:
    name: str
    password: str
    vhost: str  # where it may do everything
    forbidden_vhost: str  # where it has no permission at all
    wrong_password: str = field(default_factory=lambda: f"Wr0ng-{uuid.uuid4().hex}")

    @property
    def amqp_url(self) -> str:
        return f"amqp://{quote(self.name, safe='')}:{quote(self.password, safe='')}@127.0.0.1:5672/"

    def secrets(self) -> list[str]:
        return [
            self.password,
            quote(self.password, safe=""),
            self.wrong_password,
            f"{self.name}:{self.password}",
        ]


@pytest.fixture
def broker_user(management_client: ManagementClient, scratch_vhost: str) -> Iterator[BrokerUser]:
    name = f"flows-test-sweep-{uuid.uuid4().hex[:8]}"
    user = BrokerUser(
        name=name,
        password=f"Sw33p-{uuid.uuid4().hex}-pw",
        vhost=scratch_vhost,
        forbidden_vhost=create_vhost_for(
            management_client, f"flows-test-{uuid.uuid4().hex[:10]}", []
        ),
    )
    create_user(management_client, name, user.password, tags="monitoring")
    management_client.grant_permissions(scratch_vhost, name)
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("orders", "topic")
        channel.queue_declare("orders.eu")
        channel.queue_bind("orders.eu", "orders", "order.eu.*")
    yield user
    delete_user(management_client, name)
    management_client.remove_vhost(user.forbidden_vhost)


class Captured:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def response(self, response) -> None:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        body = response.content.decode("utf-8", errors="replace")
        self.texts.append(f"{response.status_code}\n{headers}\n{body}")

    def assert_holds_none_of(self, secrets: list[str], *, but_names: str) -> None:
        everything = "\n".join(self.texts)
        # What was captured does talk about the user (the broker's refusals name it).
        assert but_names in everything
        for secret in secrets:
            assert secret not in everything


def requests_to_make(user: BrokerUser) -> list[tuple[str, str, dict | None]]:
    """(method, path, JSON body): pages, the API, and errors of every kind."""
    at, forbidden = quote(user.vhost, safe=""), quote(user.forbidden_vhost, safe="")
    return [
        ("GET", "/", None),
        ("GET", "/overview/status", None),
        ("GET", f"/topology/?vhost={at}", None),
        ("GET", f"/topology/details?vhost={at}&kind=exchange&name=orders", None),
        ("GET", f"/live/?vhost={at}", None),
        ("GET", f"/publish/?vhost={at}", None),
        ("GET", "/demo/", None),
        ("GET", f"/api/topology?vhost={at}", None),
        ("GET", "/api/topology?vhost=no-such-vhost", None),
        ("GET", f"/api/topology?vhost={forbidden}", None),
        ("GET", f"/topology/?vhost={forbidden}", None),
        ("GET", f"/api/route?vhost={at}&exchange=orders&routing_key=order.eu.1", None),
        ("POST", "/api/publish", {"vhost": user.vhost, "exchange": "orders",
                                  "routing_key": "order.eu.1", "body": "{}"}),
        ("POST", "/api/publish", {"vhost": user.forbidden_vhost, "exchange": "",
                                  "routing_key": "q", "body": "{}"}),
        ("POST", "/api/publish", {"vhost": "no-such-vhost", "exchange": "", "routing_key": "q"}),
    ]  # fmt: skip


def test_the_password_is_in_no_page_response_frame_or_log_line(
    broker_user: BrokerUser,
    start_dashboard,
    user,
    client,
    settings,
    fresh_runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    grant_publish(user)
    captured = Captured()
    for logger in ("", "pika", "httpx", "httpcore", "django.request", "flows"):
        caplog.set_level(logging.DEBUG, logger=logger)

    # In this process: the same views, with the same credentials.
    settings.AMQP_URL = broker_user.amqp_url
    settings.RABBITMQ_API_USER = broker_user.name
    settings.RABBITMQ_API_PASSWORD = broker_user.password
    client.force_login(user)
    for method, path, body in requests_to_make(broker_user):
        if method == "GET":
            captured.response(client.get(path))
        else:
            captured.response(client.post(path, body, content_type="application/json"))

    # Served for real, logging at DEBUG, with a websocket session.
    dashboard = start_dashboard(AMQP_URL=broker_user.amqp_url, DJANGO_LOG_LEVEL="DEBUG")
    with httpx.Client(base_url=dashboard.url, auth=(user.username, TEST_PASSWORD)) as http:
        for method, path, body in requests_to_make(broker_user):
            captured.response(http.request(method, path, json=body, timeout=30))

    cookie = session_cookie(user)

    async def watch() -> list[dict]:
        async with open_tap(dashboard.url, cookie, vhost=broker_user.vhost) as ws:
            frames = await receive_until(ws, is_running)
        async with open_tap(dashboard.url, cookie, vhost=broker_user.forbidden_vhost) as ws:
            frames += await receive_until(
                ws, lambda m: (m.get("status") or {}).get("error"), timeout=60
            )
        return frames

    frames = run_async(watch)
    assert any((f.get("status") or {}).get("error") for f in frames)  # the broker refused
    captured.texts.append(json.dumps(frames, ensure_ascii=False))

    # The broker refusing the dashboard's password.
    refused = start_dashboard(
        AMQP_URL=broker_user.amqp_url.replace(broker_user.password, broker_user.wrong_password)
    )
    with httpx.Client(base_url=refused.url, auth=(user.username, TEST_PASSWORD)) as http:
        for path in ("/", f"/api/topology?vhost={quote(broker_user.vhost, safe='')}"):
            captured.response(http.get(path, timeout=30))
        assert http.get("/api/topology", timeout=30).status_code == 502

    captured.texts += [dashboard.output(), refused.output(), caplog.text]
    assert "DEBUG" in dashboard.output()  # it did log at DEBUG
    captured.assert_holds_none_of(broker_user.secrets(), but_names=broker_user.name)
