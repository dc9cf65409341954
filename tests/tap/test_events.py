"""Event normalisation: each delivery of either mode becomes one `TapEvent` (tables)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json

import pika
import pytest

from flows.tap.events import (
    BodyPreview,
    TapEvent,
    body_bytes,
    body_preview,
    correct_default_routes,
    from_binding_delivery,
    from_firehose_delivery,
    json_safe,
    prettify,
    split_properties,
)

CONTRACT_KEYS = {
    "seq", "kind", "source", "vhost", "exchange", "routing_key", "routing_keys",
    "routed_queues", "unroutable", "queue", "connection", "channel", "user", "redelivered",
    "properties", "headers", "header_types", "body", "received_at",
}  # fmt: skip


def test_the_typed_event_has_exactly_the_keys_of_the_stream() -> None:
    assert TapEvent.__required_keys__ == CONTRACT_KEYS
    assert TapEvent.__optional_keys__ == frozenset()
    assert BodyPreview.__required_keys__ == {"preview", "encoding", "size", "truncated"}
    assert BodyPreview.__optional_keys__ == {"pretty", "raw", "masked"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (7, 7),
        ("été", "été"),
        (b"plain", "plain"),
        (b"\xff\xfe", {"base64": "//4="}),
        (decimal.Decimal("1.50"), "1.50"),
        (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05+00:00"),
        (float("nan"), "nan"),
        (1.5, 1.5),
        ({b"k": [b"a", 1, {"n": decimal.Decimal("2")}]}, {"k": ["a", 1, {"n": "2"}]}),
    ],
)
def test_json_safe_turns_amqp_values_into_json_data(value, expected) -> None:
    assert json_safe(value) == expected
    json.dumps(json_safe(value), allow_nan=False)


@pytest.mark.parametrize(
    ("body", "content_type", "limit", "expected"),
    [
        (b'{"a":1,"b":[1,2]}', None, 100,
         {"preview": '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}', "encoding": "json",
          "size": 17, "truncated": False, "raw": "eyJhIjoxLCJiIjpbMSwyXX0="}),
        (b"[1]", None, 100, {"preview": "[\n  1\n]", "encoding": "json", "size": 3,
                             "truncated": False, "raw": "WzFd"}),
        # JSON already written the way it is shown: the preview is the body, no raw copy.
        (b'{\n  "a": 1\n}', None, 100, {"preview": '{\n  "a": 1\n}', "encoding": "json",
                                         "size": 12, "truncated": False}),
        (b"42", "application/json", 100, {"preview": "42", "encoding": "json", "size": 2,
                                          "truncated": False}),
        # Numbers without a JSON content type stay text: "42" published as text is text.
        (b"42", None, 100, {"preview": "42", "encoding": "text", "size": 2, "truncated": False}),
        (b"{not json", None, 100, {"preview": "{not json", "encoding": "text", "size": 9,
                                   "truncated": False}),
        ("héllo <script>".encode(), "text/plain", 100,
         {"preview": "héllo <script>", "encoding": "text", "size": 15, "truncated": False}),
        (b"", None, 100, {"preview": "", "encoding": "text", "size": 0, "truncated": False}),
        (b"\x00\xff\x10", None, 100, {"preview": "AP8Q", "encoding": "base64", "size": 3,
                                      "truncated": False}),
        # A cut preview: the whole body travels beside it (within the raw limit).
        (b"abcdefgh", None, 4, {"preview": "abcd", "encoding": "text", "size": 8,
                                "truncated": True, "raw": "YWJjZGVmZ2g="}),
        # A long JSON document cut short is shown as the text it starts with.
        (b'{"k": "vvvvvvvv"}', None, 6, {"preview": '{"k": ', "encoding": "text", "size": 17,
                                        "truncated": True, "raw": "eyJrIjogInZ2dnZ2dnZ2In0="}),
        # The cut falls inside "é" (2 bytes): the half character is left out, still text.
        ("abé".encode(), None, 3, {"preview": "ab", "encoding": "text", "size": 4,
                                   "truncated": True, "raw": "YWLDqQ=="}),
        (b"\xff\xfe\xfd\xfc\xfb", None, 2, {"preview": "//4=", "encoding": "base64", "size": 5,
                                            "truncated": True, "raw": "//79/Ps="}),
    ],
)  # fmt: skip
def test_body_preview(body: bytes, content_type, limit: int, expected: dict) -> None:
    preview = body_preview(body, content_type=content_type, limit=limit)
    assert preview == expected
    assert body_bytes(preview) == body


def test_a_body_beyond_the_raw_limit_is_only_previewed() -> None:
    preview = body_preview(b"abcdefgh", limit=4, raw_limit=7)
    assert "raw" not in preview
    assert body_bytes(preview) is None


def test_prettify_keeps_the_bytes_of_a_json_body() -> None:
    event = from_binding_delivery(
        seq=1, vhost="v", exchange="x", routing_key="k", properties=pika.BasicProperties(),
        body=b'{"a":[1]}', received_at=1.0, pretty=False,
    )  # fmt: skip
    assert body_bytes(event["body"]) == b'{"a":[1]}'
    assert body_bytes(prettify(event)["body"]) == b'{"a":[1]}'


def test_default_preview_limit_is_64_kib() -> None:
    body = b"x" * (64 * 1024 + 1)
    preview = body_preview(body)
    assert preview["truncated"] is True
    assert len(preview["preview"]) == 64 * 1024
    assert body_preview(body[:-1])["truncated"] is False


@pytest.mark.parametrize(
    ("properties", "expected_props", "expected_headers", "expected_types"),
    [
        (pika.BasicProperties(), {}, {}, {}),
        (
            pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id="m-1",
                timestamp=1700000000,
                headers={"x-id": b"7", "n": 3, "when": dt.datetime(2026, 1, 1)},
            ),
            {"content_type": "application/json", "delivery_mode": 2, "message_id": "m-1",
             "timestamp": 1700000000},
            {"x-id": "7", "n": 3, "when": "2026-01-01T00:00:00+00:00"},
            {"x-id": "bytes", "n": "int32", "when": "timestamp"},
        ),
        # The firehose's `properties` header: a table keyed by the same names.
        (
            {b"content_type": b"text/plain", "priority": 5, "headers": {"h": b"v"},
             "timestamp": dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)},
            {"content_type": "text/plain", "priority": 5, "timestamp": 1700000000},
            {"h": "v"},
            {"h": "bytes"},
        ),
    ],
)  # fmt: skip
def test_split_properties(properties, expected_props, expected_headers, expected_types) -> None:
    assert split_properties(properties) == (expected_props, expected_headers, expected_types)


def test_binding_delivery_is_a_publish_event_of_unknown_route() -> None:
    event = from_binding_delivery(
        seq=3,
        vhost="v/1",
        exchange="food.exchange",
        routing_key="food.icecream",
        properties=pika.BasicProperties(user_id="alice", headers={"k": "v"}),
        body=b'{"flavour": "vanilla"}',
        received_at=12.5,
    )
    assert set(event) == CONTRACT_KEYS
    assert event == {
        "seq": 3, "kind": "publish", "source": "bindings", "vhost": "v/1",
        "exchange": "food.exchange", "routing_key": "food.icecream",
        "routing_keys": ["food.icecream"], "routed_queues": None, "unroutable": None,
        "queue": None, "connection": None, "channel": None, "user": "alice",
        "redelivered": None, "properties": {"user_id": "alice"}, "headers": {"k": "v"},
        "header_types": {"k": "string"},
        "body": {"preview": '{\n  "flavour": "vanilla"\n}', "encoding": "json", "size": 22,
                 "truncated": False, "raw": "eyJmbGF2b3VyIjogInZhbmlsbGEifQ=="},
        "received_at": 12.5,
    }  # fmt: skip
    json.dumps(event, allow_nan=False)


def trace_headers(**extra) -> dict:
    return {
        "exchange_name": b"a.b.c",
        "routing_keys": [b"rk.1", b"cc.2"],
        "properties": {"content_type": b"text/plain", "headers": {"x": 1}},
        "node": b"rabbit@host",
        "vhost": b"v",
        "connection": b"127.0.0.1:5555 -> 127.0.0.1:5672",
        "channel": 1,
        "user": b"guest",
        **extra,
    }


@pytest.mark.parametrize(
    ("routing_key", "headers", "existing_queues", "expected"),
    [
        # Publish: exchange from the header (dots and all), every routing key, the route.
        ("publish.a.b.c", trace_headers(routed_queues=[b"q1", b"q2"]), None,
         {"kind": "publish", "exchange": "a.b.c", "routing_key": "rk.1",
          "routing_keys": ["rk.1", "cc.2"], "routed_queues": ["q1", "q2"], "unroutable": False,
          "queue": None, "redelivered": None}),
        ("publish.a.b.c", trace_headers(routed_queues=[]), None,
         {"kind": "publish", "routed_queues": [], "unroutable": True}),
        # Old brokers without routed_queues: the route is unknown, not "unroutable".
        ("publish.a.b.c", trace_headers(), None,
         {"kind": "publish", "routed_queues": None, "unroutable": None}),
        # Default exchange: routed_queues names the key's queue even when it does not exist.
        ("publish.", trace_headers(exchange_name=b"", routed_queues=[b"nope"]), {"other"},
         {"exchange": "", "routed_queues": [], "unroutable": True}),
        ("publish.", trace_headers(exchange_name=b"", routed_queues=[b"work"]), {"work"},
         {"exchange": "", "routed_queues": ["work"], "unroutable": False}),
        # Existing queues only correct the default exchange.
        ("publish.x", trace_headers(exchange_name=b"x", routed_queues=[b"q"]), set(),
         {"exchange": "x", "routed_queues": ["q"], "unroutable": False}),
        # Deliver: the queue follows "deliver.", dots included; redelivered as a bool.
        ("deliver.tasks.high", trace_headers(redelivered=1), None,
         {"kind": "deliver", "queue": "tasks.high", "redelivered": True, "routed_queues": None,
          "unroutable": None, "exchange": "a.b.c", "connection": "127.0.0.1:5555 -> 127.0.0.1:5672",
          "channel": 1, "user": "guest"}),
        ("deliver.q", trace_headers(redelivered=0), None,
         {"kind": "deliver", "queue": "q", "redelivered": False}),
    ],
)  # fmt: skip
def test_firehose_delivery(routing_key, headers, existing_queues, expected) -> None:
    event = from_firehose_delivery(
        seq=9,
        vhost="v",
        routing_key=routing_key,
        trace_headers=headers,
        body=b"hi",
        received_at=1.0,
        existing_queues=existing_queues,
    )
    assert event is not None
    assert set(event) == CONTRACT_KEYS
    assert {key: event[key] for key in expected} == expected
    assert event["source"] == "firehose"
    assert event["properties"] == {"content_type": "text/plain"}
    assert event["headers"] == {"x": 1}
    assert event["body"] == {"preview": "hi", "encoding": "text", "size": 2, "truncated": False}
    json.dumps(event, allow_nan=False)


@pytest.mark.parametrize(
    ("routing_key", "headers", "existing_queues"),
    [
        ("publish.", trace_headers(exchange_name=b"", routed_queues=[b"nope"]), {"other"}),
        ("publish.", trace_headers(exchange_name=b"", routed_queues=[b"work"]), {"work"}),
        ("publish.", trace_headers(exchange_name=b"", routed_queues=[b"a", b"b"]), {"b"}),
        ("publish.", trace_headers(exchange_name=b"", routed_queues=[]), set()),
        ("publish.", trace_headers(exchange_name=b""), set()),  # route unknown: left so
        ("publish.x", trace_headers(exchange_name=b"x", routed_queues=[b"q"]), set()),
        ("deliver.q", trace_headers(redelivered=0), set()),
    ],
)  # fmt: skip
def test_routes_corrected_afterwards_as_when_made(routing_key, headers, existing_queues) -> None:
    """A consumer process makes firehose events without knowing the queues; the tap corrects
    them after: the same event as one made knowing them."""

    def made(existing):
        return from_firehose_delivery(
            seq=1, vhost="v", routing_key=routing_key, trace_headers=headers, body=b"hi",
            received_at=1.0, existing_queues=existing,
        )  # fmt: skip

    assert correct_default_routes(made(None), existing_queues) == made(existing_queues)


@pytest.mark.parametrize(
    "routing_key",
    [
        "deliver.flows-dashboard.tap.0123abcd",  # the tap watching its own queue
        "something.else",
        "publish",
    ],
)
def test_firehose_deliveries_that_are_ignored(routing_key: str) -> None:
    event = from_firehose_delivery(
        seq=1,
        vhost="v",
        routing_key=routing_key,
        trace_headers=trace_headers(redelivered=0),
        body=b"",
        received_at=1.0,
    )
    assert event is None


def test_binary_body_round_trips_through_base64() -> None:
    body = bytes(range(256))
    event = from_binding_delivery(
        seq=1,
        vhost="v",
        exchange="x",
        routing_key="",
        properties=pika.BasicProperties(content_type="application/octet-stream"),
        body=body,
        received_at=0.0,
    )
    assert event["body"]["encoding"] == "base64"
    assert base64.b64decode(event["body"]["preview"]) == body


def test_deferred_pretty_printing_gives_the_same_body_once_shown() -> None:
    body = b'{"a": [1, {"b": "\xc3\xa9"}]}'
    deferred = body_preview(body, pretty=False)
    assert deferred == {"preview": body.decode(), "encoding": "json", "size": len(body),
                        "truncated": False, "pretty": False}  # fmt: skip
    event = {"seq": 1, "body": deferred}
    shown = prettify(event)
    assert shown["body"] == body_preview(body)
    assert event["body"] is deferred  # the shared event is left alone
    assert prettify(shown) is shown


@pytest.mark.parametrize("body", [b"plain text", b"\xff\x00", b"[1, 2"])
def test_only_json_bodies_are_deferred(body: bytes) -> None:
    assert body_preview(body, pretty=False) == body_preview(body)
