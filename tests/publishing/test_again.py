"""A captured message as the fields that publish it again (pure, tables of cases), and
"Publish again" on the real broker: headers with their AMQP types, every property, the body."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import pika
import pytest
from pika.compat import long

from flows.broker.amqp import amqp_username
from flows.live.rows import build_row
from flows.publishing import publisher, service  # publisher installs the float-header fix
from flows.publishing.again import NotRepublishable, publish_fields, why_not
from flows.publishing.fields import PublishInvalid, parse_headers, parse_publish_request
from flows.tap.events import body_bytes, prettify
from tests.support.publishing import grant_publish
from tests.support.tap_events import published_via_bindings
from tests.support.tap_harness import amqp_channel, running_tap

assert publisher.float_headers  # imported for its side effect: floats travel as doubles

MOMENT = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def typed(value: Any) -> Any:
    """A header value with the Python type pika decoded it as, at every depth."""
    if isinstance(value, dict):
        return ("table", {key: typed(item) for key, item in value.items()})
    if isinstance(value, list):
        return ("array", [typed(item) for item in value])
    return (type(value).__name__, value)


def on_the_wire(headers: dict[str, Any]) -> bytes:
    """A header table as pika encodes it: same bytes, same AMQP types."""
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, headers)
    return b"".join(pieces)


def through_the_page(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a viewer gets it and the live page posts it back (a JSON round trip)."""
    return json.loads(build_row(prettify(event)).event_json)


def sent_again(headers: dict[str, Any]) -> dict[str, Any]:
    """The headers a captured message with `headers` is published again with."""
    event = through_the_page(published_via_bindings(headers=headers, pretty=False))
    table, errors = parse_headers(publish_fields(event)["headers"])
    assert errors == {}
    return table


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "",
        7,  # pika sends a small plain int as a signed 32-bit `I`
        -(2**31),
        long(7),  # ... and a `long` as 64-bit `l`, as the dashboard's own publisher does
        long(2**40),
        2**40,  # a plain int too large for 32 bits is sent as `l` anyway
        1.5,
        2.0,  # a double that looks whole stays a double
        True,
        False,
        None,
        decimal.Decimal("12.5"),
        decimal.Decimal("-0.001"),
        MOMENT,
        b"\xff\x00binary",
        b"utf-8 bytes",  # JSON shows them as text; they go out as bytes again
        {"n": 1, "s": "x", "deep": {"f": 2.5, "l": [1, 2]}},
        {"n": long(1), "f": 1.0, "b": True, "z": None},  # plain JSON suffices here
        [1, "two", 3.0, [long(4)], {"t": MOMENT}],
        [long(1), long(2)],
        {"x-death-like": [{"count": long(1), "time": MOMENT, "routing-keys": ["a"]}]},
        [],
        {},
    ],
)
def test_a_header_goes_out_again_with_its_amqp_type(value) -> None:
    assert on_the_wire(sent_again({"h": value})) == on_the_wire({"h": value})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"a":1}', None),  # compact JSON: the page shows it pretty, raw keeps the bytes
        (b'{\n  "a": 1\n}', "application/json"),  # already pretty: the preview is the body
        ("héllo".encode(), "text/plain"),
        (b"\x00\xff\x10", None),
        (b"", None),
    ],
)
def test_the_body_goes_out_again_byte_for_byte(body, content_type) -> None:
    properties = {"content_type": content_type} if content_type else {}
    event = through_the_page(published_via_bindings(body=body, properties=properties, pretty=False))
    assert body_bytes(event["body"]) == body
    request = parse_publish_request(publish_fields(event), generate_message_id=False)
    assert request.body == body


def test_a_body_the_page_kept_only_in_part_is_not_published_again() -> None:
    event = through_the_page(published_via_bindings(body=b"x" * 40_000))
    assert why_not(event) is not None and "40,000 bytes" in why_not(event)
    with pytest.raises(NotRepublishable):
        publish_fields(event)
    # Edit and publish still opens the form with the part that was kept.
    assert len(publish_fields(event, for_the_form=True)["body"]) == 16 * 1024


@pytest.mark.parametrize(
    ("body", "headers", "pretty"),
    [
        (b'{"password": "hunter2", "n": 1}', {}, True),  # a masked JSON key, pretty-printed
        (b'{"password":"hunter2","n":1}', {}, False),  # the same, left for `prettify`
        (b'{"n": 1, "pad": "' + b"x" * 70_000 + b'", "token": "t"}', {}, True),  # cut
        (b"{}", {"authorization": "Bearer s3cret"}, True),  # a masked header
        (b"{}", {"meta": {"api_key": "k"}}, True),  # masked inside a table
    ],
)
def test_a_message_with_masked_values_is_not_published_again(body, headers, pretty) -> None:
    """Publishing again would send the mask's `••••••` for the hidden values, and the
    event never carries them whole (no `raw` for a masked body)."""
    event = through_the_page(published_via_bindings(body=body, headers=headers, pretty=pretty))
    assert "hunter2" not in json.dumps(event) and "s3cret" not in json.dumps(event)
    if not headers:  # a masked body is not the body as published
        assert body_bytes(event["body"]) is None and event["body"]["masked"] is True
    assert "hidden (FLOWS_MASK)" in (why_not(event) or "")
    with pytest.raises(NotRepublishable):
        publish_fields(event)


def test_an_event_without_types_is_typed_from_its_json_values() -> None:
    event = through_the_page(published_via_bindings(headers={"n": 5, "t": {"a": 1}}))
    del event["header_types"]
    table, errors = parse_headers(publish_fields(event)["headers"])
    assert errors == {}
    assert typed(table) == typed({"n": long(5), "t": {"a": long(1)}})


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"name": "d", "type": "decimal", "value": "1.2345678901"}, "at most 9 digits"),
        ({"name": "d", "type": "decimal", "value": "abc"}, "expected a decimal number"),
        ({"name": "i", "type": "int32", "value": 2**31}, "between"),
        ({"name": "t", "type": "timestamp", "value": "soon"}, "date-time"),
        ({"name": "b", "type": "bytes", "value": "not base64!"}, "invalid base64"),
        ({"name": "v", "type": "void", "value": "x"}, "no value"),
        ({"name": "a", "type": "array", "value": [1]}, "an array item"),
        ({"name": "a", "type": "array", "value": [{"type": "int32", "value": "x"}]}, "value.0"),
        ({"name": "t", "type": "table", "value": [{"name": "k", "type": "int", "value": "x"}]},
         "value.0.value"),
    ],
)  # fmt: skip
def test_typed_header_rows_that_do_not_check_out_say_why(row, error) -> None:
    _, errors = parse_headers([row])
    assert error in errors["headers.0.value"]


# --- on the real broker ---------------------------------------------------------------------------

HEADERS: dict[str, Any] = {
    "int32": 7,
    "int64": long(2**40),
    "small-long": long(5),
    "float": 1.5,
    "bool": True,
    "string": "text <script>",
    "timestamp": MOMENT,
    "decimal": decimal.Decimal("12.5"),
    "bytes": b"\xff\x00",
    "table": {"n": 1, "s": "x", "nested": {"f": 2.5, "when": MOMENT}},
    "list": [1, "two", 3.0, long(4)],
    "void": None,
}


def every_property(message_id: str) -> dict[str, Any]:
    return {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "priority": 3,
        "correlation_id": "corr-1",
        "reply_to": "replies",
        "expiration": "600000",
        "message_id": message_id,
        "timestamp": 1767322800,
        "type": "order.created",
        "user_id": amqp_username(),
        "app_id": "shop",
    }


def test_publish_again_reproduces_header_types_every_property_and_the_body(
    scratch_vhost, fresh_runtime, django_user_model, db
) -> None:
    user = django_user_model.objects.create_user(username="republisher")
    grant_publish(user)
    body = b'{"order":4711,"lines":[1,2]}'
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("orders", "topic")
        channel.queue_declare("orders.all")
        channel.queue_bind("orders.all", "orders", "#")
    with running_tap(scratch_vhost, "bindings") as (_tap, collector):
        with amqp_channel(scratch_vhost) as channel:
            channel.basic_publish(
                "orders",
                "order.eu.created",
                body,
                pika.BasicProperties(headers=HEADERS, **every_property("m-4711")),
            )
        index = collector.wait_for_event(
            lambda e: e["properties"].get("message_id") == "m-4711", what="the tapped message"
        )
        event = through_the_page(collector.events[index])

    result = service.publish_message(user, publish_fields(event), generate_message_id=False)
    assert result.outcome is not None and result.outcome.status == "routed"

    with amqp_channel(scratch_vhost) as channel:
        original = channel.basic_get("orders.all", auto_ack=True)
        again = channel.basic_get("orders.all", auto_ack=True)
    assert original[0] is not None and again[0] is not None, "two messages in the queue"
    (_, props_1, body_1), (method_2, props_2, body_2) = original, again
    assert (method_2.exchange, method_2.routing_key) == ("orders", "order.eu.created")
    assert body_2 == body_1 == body
    assert typed(props_2.headers) == typed(props_1.headers) == typed(HEADERS)
    names = [*every_property("m-4711"), "cluster_id"]
    assert {n: getattr(props_2, n) for n in names} == {n: getattr(props_1, n) for n in names}


def test_publish_again_needs_the_publisher_permission(db, django_user_model) -> None:
    from flows.publishing.policy import PublishForbidden

    reader = django_user_model.objects.create_user(username="reader")
    event = through_the_page(published_via_bindings())
    with pytest.raises(PublishForbidden):
        service.publish_message(reader, publish_fields(event), generate_message_id=False)


def test_publish_again_stays_inside_the_allow_list(db, django_user_model, settings) -> None:
    from flows.publishing.policy import PublishForbidden

    settings.FLOWS_PUBLISH_EXCHANGES = ["demo.*"]
    user = django_user_model.objects.create_user(username="pub")
    grant_publish(user)
    event = through_the_page(published_via_bindings(exchange="food"))
    with pytest.raises(PublishForbidden) as refused:
        service.publish_message(user, publish_fields(event), generate_message_id=False)
    assert refused.value.field == "exchange"
    assert PublishInvalid  # the other refusal publish_message raises, for bad fields
