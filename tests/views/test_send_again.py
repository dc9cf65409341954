"""The live page's "Publish again" and "Edit and publish": from the details panel, through
the publishing service, on the real broker."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from typing import Any

import pika
import pytest
from django.test import Client

from flows.broker.amqp import connection_parameters
from flows.live.rows import build_row
from flows.publishing import publisher  # noqa: F401  (floats travel as doubles)
from tests.support.publishing import DemoTopology
from tests.support.tap_events import published_via_bindings


def row_event(**fields: Any) -> str:
    """A row's event as the page posts it back."""
    return build_row(published_via_bindings(**fields)).event_json


@pytest.fixture
def publisher_client(client: Client, publisher_user) -> Client:
    client.force_login(publisher_user)
    return client


def test_details_offer_both_ways_to_send_it_again(publisher_client):
    html = publisher_client.post("/live/details", {"event": row_event()}).content.decode()
    assert 'data-testid="publish-again"' in html
    assert 'data-testid="edit-and-publish"' in html
    assert 'action="/publish/prefill"' in html


def test_a_reader_is_told_why_not(signed_in):
    html = signed_in.post("/live/details", {"event": row_event()}).content.decode()
    assert 'data-testid="send-again-refusal"' in html
    assert 'data-testid="publish-again"' not in html


def test_a_body_kept_only_in_part_cannot_be_published_again(publisher_client):
    html = publisher_client.post(
        "/live/details", {"event": row_event(body=b"x" * 40_000)}
    ).content.decode()
    assert 'data-testid="publish-again" disabled' in html
    assert "40,000 bytes" in html


def test_publish_again_from_the_page_lands_in_the_queue(publisher_client, demo: DemoTopology):
    event = row_event(
        vhost=demo.vhost,
        exchange="demo.topic",
        routing_key="a.b",
        body=b'{"n":1}',
        headers={"attempt": 3, "ratio": 0.5},
        properties={"message_id": "m-1", "priority": 4},
    )
    response = publisher_client.post("/live/publish-again", {"event": event})
    html = response.content.decode()
    assert 'data-testid="outcome-confirm">confirmed' in html, html
    assert "m-1" in html
    connection = pika.BlockingConnection(_params(demo.vhost))
    try:
        method, properties, body = connection.channel().basic_get("q.a", auto_ack=True)
    finally:
        connection.close()
    assert method is not None
    assert body == b'{"n":1}'
    assert (properties.message_id, properties.priority) == ("m-1", 4)
    assert properties.headers == {"attempt": 3, "ratio": 0.5}
    assert type(properties.headers["attempt"]) is int  # sent as it came: 32-bit


def test_publish_again_refuses_a_reader(signed_in):
    response = signed_in.post("/live/publish-again", {"event": row_event()})
    assert response.status_code == 403  # the button is not shown to a viewer; a post is refused
    assert "publish_messages" in response.content.decode()


def test_edit_and_publish_fills_in_every_field(publisher_client):
    event = row_event(
        vhost="v",
        exchange="food",
        routing_key="food.<pizza>",
        body="héllo".encode(),
        headers={"n": 5, "when": dt.datetime(2026, 1, 2)},
        properties={"message_id": "m-9", "delivery_mode": 2, "expiration": "60000",
                    "timestamp": 1767322800, "content_type": "text/plain"},
    )  # fmt: skip
    response = publisher_client.post("/publish/prefill", {"event": event})
    assert response.status_code == 200
    html = response.content.decode()
    for name, value in [
        ("exchange", "food"),
        ("routing_key", "food.&lt;pizza&gt;"),
        ("message_id", "m-9"),
        ("expiration", "60000"),
        ("timestamp", "1767322800"),
        ("content_type", "text/plain"),
    ]:
        assert re.search(rf'name="{name}"[^>]*value="{re.escape(value)}"', html), name
    assert "héllo</textarea>" in html
    assert '<option value="persistent" selected>' in html
    names = re.findall(r'name="header_name" value="([^"]*)"', html)
    values = re.findall(r'name="header_value" value="([^"]*)"', html)
    types = re.findall(r'<option value="(\w+)" selected>', html)
    assert names[:2] == ["n", "when"]
    assert [unescape(v) for v in values[:2]] == ["5", "2026-01-02T00:00:00+00:00"]
    assert {"int32", "timestamp"} <= set(types)


def test_edit_and_publish_of_a_broken_row_says_so(publisher_client):
    response = publisher_client.post("/publish/prefill", {"event": "{not json"})
    assert response.status_code == 200
    assert "This row carries no readable message." in response.content.decode()


def _params(vhost: str) -> pika.URLParameters:
    return connection_parameters(vhost=vhost, purpose="test")
