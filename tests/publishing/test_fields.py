"""Publish fields are checked before anything reaches the broker: tables of cases."""

from __future__ import annotations

import base64
import datetime as dt
import decimal

import pika.compat
import pytest
from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.publishing.fields import (
    PUBLISH_FIELDS,
    PublishInvalid,
    as_64_bit_integers,
    form_to_raw,
    parse_body,
    parse_expiration,
    parse_header_value,
    parse_publish_request,
    parse_timestamp,
)
from flows.publishing.policy import exchange_allowed, refusal_outside_allow_list

long = pika.compat.long

PRETTY = '{\n  "a": [\n    1,\n    2\n  ]\n}'
BASE = {"vhost": "v", "exchange": "demo", "routing_key": "a.b", "body": "hi"}


def parse(**fields):
    return parse_publish_request({**BASE, **fields}, new_message_id=lambda: "generated-id")


def errors_of(**fields) -> dict[str, str]:
    with pytest.raises(PublishInvalid) as raised:
        parse(**fields)
    return raised.value.errors


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("string", "x", "x"),
        ("string", "", ""),
        ("string", "<script>", "<script>"),
        # `int` headers go out 64-bit (pika's `long` marker), `int32` ones 32-bit.
        ("int", "42", long(42)),
        ("int", " -7 ", long(-7)),
        ("int", 42, long(42)),
        ("int", 3.0, long(3)),
        ("int", str(2**63 - 1), long(2**63 - 1)),
        ("int32", "42", 42),
        ("decimal", "12.50", decimal.Decimal("12.50")),
        ("timestamp", "2026-01-31T12:00:00Z", dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)),
        ("timestamp", 1769860800, dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)),
        ("bytes", "AP8=", b"\x00\xff"),
        ("void", "", None),
        ("array", '[{"type": "int32", "value": 1}, {"type": "string", "value": "a"}]', [1, "a"]),
        ("table", [{"name": "n", "type": "int32", "value": 1}], {"n": 1}),
        ("float", "1.5", 1.5),
        ("float", "2", 2.0),
        ("float", 2, 2.0),
        ("bool", "true", True),
        ("bool", "False", False),
        ("bool", "1", True),
        ("bool", True, True),
        ("table", '{"a": 1, "b": {"c": [true, "x"]}}', {"a": 1, "b": {"c": [True, "x"]}}),
        ("table", {"a": 1}, {"a": 1}),
        ("list", '[1, "two", 3.5, null]', [1, "two", 3.5, None]),
        ("list", [1, 2], [1, 2]),
    ],
)
def test_typed_header_values(kind, value, expected):
    parsed = parse_header_value(kind, value)
    assert parsed == expected
    assert type(parsed) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("int", "4.5", "expected an integer"),
        ("int", "abc", "expected an integer"),
        ("int", "", "expected an integer"),
        ("int", True, "boolean"),
        ("int", str(2**63), "between"),
        ("float", "x", "expected a number"),
        ("float", "nan", "finite"),
        ("float", "inf", "finite"),
        ("bool", "maybe", "true or false"),
        ("bool", "", "true or false"),
        ("table", "[1]", "typed table"),
        ("table", "{bad json", "invalid JSON"),
        ("list", '{"a": 1}', "JSON array"),
        ("list", f"[{2**64}]", "64-bit"),
        ("string", 5, "expected a string"),
        ("money", "1", "unknown header type"),
    ],
)
def test_header_values_of_the_wrong_type_are_refused(kind, value, message):
    with pytest.raises(ValueError, match=message):
        parse_header_value(kind, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "0"), ("60000", "60000"), (" 5 ", "5"), (60000, "60000"), ("", None), (None, None)],
)
def test_expiration_accepts_non_negative_integer_strings(value, expected):
    assert parse_expiration(value) == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "1e3", "abc", "٣", "99999999999", True])
def test_expiration_refuses_anything_else(value):
    with pytest.raises(ValueError):
        parse_expiration(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1700000000", 1700000000),
        (1700000000, 1700000000),
        ("2026-01-31T12:00:00Z", 1769860800),
        ("2026-01-31T13:00:00+01:00", 1769860800),
        ("2026-01-31T12:00:00", 1769860800),
        ("", None),
    ],
)
def test_timestamps(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "-5", "1969-12-31T00:00:00Z"])
def test_bad_timestamps(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)


@pytest.mark.parametrize(
    ("text", "encoding", "body", "display"),
    [
        ("héllo", "text", "héllo".encode(), "héllo"),
        ('{"a":[1,2]}', "json", PRETTY.encode(), PRETTY),
        ('"é"', "json", '"é"'.encode(), '"é"'),
        (base64.b64encode(b"\x00\xff").decode(), "base64", b"\x00\xff", "AP8="),
        ("AP8\n=", "base64", b"\x00\xff", "AP8\n="),
        ("", "text", b"", ""),
    ],
)
def test_body_encodings(text, encoding, body, display):
    assert parse_body(text, encoding, max_bytes=100) == (body, display)


@pytest.mark.parametrize(
    ("text", "encoding", "max_bytes", "message"),
    [
        ("{oops", "json", 100, "invalid JSON"),
        ("", "json", 100, "invalid JSON"),
        ("not base64!", "base64", 100, "invalid base64"),
        ("x" * 101, "text", 100, "101 bytes; the limit is 100 bytes"),
        ("é" * 51, "text", 100, "102 bytes"),
        ("x", "yaml", 100, "unknown body encoding"),
    ],
)
def test_bad_bodies(text, encoding, max_bytes, message):
    with pytest.raises(ValueError, match=message):
        parse_body(text, encoding, max_bytes=max_bytes)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"routing_key": "a\ud800"}, "routing_key"),
        ({"body": "\udfff"}, "body"),
        ({"body": '"\\ud800"', "body_encoding": "json"}, "body"),
        ({"headers": {"h": "\ud800"}}, "headers.0.value"),
        ({"headers": {"\ud800": "x"}}, "headers.0.name"),
        ({"headers": {"t": {"\ud800": 1}}}, "headers.0.value"),
    ],
)
def test_lone_surrogates_are_refused_on_their_field(fields, field):
    assert "not valid Unicode" in errors_of(**fields)[field]


def test_a_full_request_with_every_property():
    request = parse(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode="persistent",
        priority="9",
        correlation_id="c-1",
        reply_to="replies",
        expiration="60000",
        message_id="m-1",
        timestamp="1700000000",
        type="order.created",
        user_id="guest",
        app_id="flows",
        mandatory="false",
        headers=[
            {"name": "n", "type": "int", "value": "1"},
            {"name": "t", "type": "table", "value": '{"x": [1]}'},
            {"name": "", "type": "string", "value": ""},
        ],
    )
    assert request.properties == {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "priority": 9,
        "correlation_id": "c-1",
        "reply_to": "replies",
        "expiration": "60000",
        "message_id": "m-1",
        "timestamp": 1700000000,
        "type": "order.created",
        "user_id": "guest",
        "app_id": "flows",
    }
    assert request.headers == {"n": 1, "t": {"x": [1]}}
    assert request.mandatory is False
    assert request.message_id_generated is False


def test_the_api_may_send_a_json_body_as_a_value():
    request = parse(body={"order": [1, "é"]}, body_encoding="json")
    assert request.body == '{\n  "order": [\n    1,\n    "é"\n  ]\n}'.encode()


def test_message_id_is_generated_and_mandatory_is_on_by_default():
    request = parse()
    assert request.message_id == "generated-id"
    assert request.message_id_generated is True
    assert request.mandatory is True
    assert (request.repeat, request.rate) == (1, None)


def test_api_headers_as_an_object_take_their_json_types():
    request = parse(headers={"s": "x", "i": 2, "f": 2.5, "b": False, "t": {"a": 1}, "l": [1]})
    assert request.headers == {"s": "x", "i": 2, "f": 2.5, "b": False, "t": {"a": 1}, "l": [1]}
    # Integers, nested ones too, are AMQP signed 64-bit whatever their size.
    assert type(request.headers["i"]) is pika.compat.long
    assert type(request.headers["t"]["a"]) is type(request.headers["l"][0]) is pika.compat.long
    assert (type(request.headers["b"]), type(request.headers["f"])) == (bool, float)


@pytest.mark.parametrize(
    ("value", "expected_types"),
    [
        (7, pika.compat.long),
        (True, bool),
        (2.0, float),
        ("7", str),
        ([1, [False, {"x": -(2**63)}]], [pika.compat.long, [bool, {"x": pika.compat.long}]]),
    ],
)
def test_header_integers_are_marked_64_bit_and_nothing_else_is(value, expected_types):
    def types(item):
        if isinstance(item, dict):
            return {key: types(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [types(inner) for inner in item]
        return type(item)

    converted = as_64_bit_integers(value)
    assert converted == value
    assert types(converted) == expected_types


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"routing_key": "k" * 256}, "routing_key", "256 bytes long"),
        ({"routing_key": "é" * 128}, "routing_key", "256 bytes long"),
        ({"exchange": "e" * 256}, "exchange", "at most 255 bytes"),
        ({"vhost": ""}, "vhost", "choose a vhost"),
        ({"body": "{", "body_encoding": "json"}, "body", "invalid JSON"),
        ({"priority": "256"}, "priority", "between 0 and 255"),
        ({"priority": "-1"}, "priority", "between 0 and 255"),
        ({"priority": "high"}, "priority", "expected 0-255"),
        ({"expiration": "-5"}, "expiration", "non-negative whole number"),
        ({"expiration": "10s"}, "expiration", "non-negative whole number"),
        ({"delivery_mode": "3"}, "delivery_mode", "persistent or transient"),
        ({"correlation_id": "c" * 300}, "correlation_id", "at most 255 bytes"),
        ({"mandatory": "perhaps"}, "mandatory", "true or false"),
        ({"repeat": "0"}, "repeat", "between 1 and 100000"),
        ({"repeat": "100001"}, "repeat", "between 1 and 100000"),
        ({"rate": "0"}, "rate", "above 0"),
        ({"rate": "fast"}, "rate", "expected a number"),
        ({"headers": [{"name": "n", "type": "int", "value": "x"}]}, "headers.0.value", "integer"),
        ({"headers": [{"name": "", "type": "int", "value": "1"}]}, "headers.0.name", "a name"),
        (
            {"headers": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]},
            "headers.1.name",
            "given twice",
        ),
        ({"headers": {"n": None}}, "headers.0.value", "unsupported value"),
        ({"headers": [{"name": "n", "value": "1", "typ": "int"}]}, "headers.0.typ", "unknown"),
        ({"headers": "a=b"}, "headers", "must be an object"),
        ({"body": {"a": 1}}, "body", "must be a string"),
        ({"body": [1.5, float("nan")], "body_encoding": "json"}, "body", "NaN"),
    ],
)
def test_errors_are_reported_on_their_field(fields, field, message):
    errors = errors_of(**fields)
    assert field in errors
    assert message in errors[field]


def test_every_error_is_reported_at_once():
    errors = errors_of(priority="300", expiration="x", routing_key="k" * 300)
    assert set(errors) == {"priority", "expiration", "routing_key"}


def test_the_body_limit_is_configurable():
    with pytest.raises(PublishInvalid) as raised:
        parse_publish_request({**BASE, "body": "x" * 11}, max_body_bytes=10)
    assert "limit is 10 bytes" in raised.value.errors["body"]


def test_a_form_submission_becomes_the_same_fields():
    data = QueryDict(mutable=True)
    data.update({"vhost": "v", "exchange": "e", "mandatory_present": "1"})
    data.setlist("header_name", ["a", "b"])
    data.setlist("header_type", ["int", "bool"])
    data.setlist("header_value", ["1", "true"])
    raw = form_to_raw(data)
    assert raw["mandatory"] == "false"  # an unticked checkbox is absent from the form
    assert raw["headers"] == [
        {"name": "a", "type": "int", "value": "1"},
        {"name": "b", "type": "bool", "value": "true"},
    ]
    request = parse_publish_request(raw)
    assert request.headers == {"a": 1, "b": True}
    assert request.mandatory is False


@pytest.mark.parametrize(
    ("exchange", "patterns", "allowed"),
    [
        ("anything", [], True),
        ("demo.orders", ["demo.*", "test.*"], True),
        ("test.x", ["demo.*", "test.*"], True),
        ("prod.orders", ["demo.*", "test.*"], False),
        ("Demo.orders", ["demo.*"], False),
        ("demo", ["demo.*"], False),
        ("", ["demo.*"], False),
        ("", ["amq.default"], True),
        ("", ["*"], True),
    ],
)
def test_the_exchange_allow_list(exchange, patterns, allowed):
    assert exchange_allowed(exchange, patterns) is allowed
    refusal = refusal_outside_allow_list(exchange, patterns)
    assert (refusal is None) is allowed
    if refusal:
        assert "FLOWS_PUBLISH_EXCHANGES" in refusal


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
field_names = st.sampled_from(PUBLISH_FIELDS)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=8))
def test_any_json_either_parses_or_names_the_bad_fields(raw):
    """Whatever a client sends, the answer is a request or field errors, never a crash."""
    try:
        request = parse_publish_request(raw)
    except PublishInvalid as exc:
        assert exc.errors
        assert all(isinstance(message, str) and message for message in exc.errors.values())
    else:
        assert isinstance(request.body, bytes)
        assert request.vhost
        # What passed the checks can be encoded for the wire.
        from flows.publishing.publisher import build_properties

        build_properties(request).encode()
