"""The management API's publish body read as the dashboard's own fields: tables of cases."""

from __future__ import annotations

import pytest

from flows.publishing.fields import PublishInvalid, parse_publish_request
from flows.publishing.management_body import management_field, publish_fields

BODY = {"properties": {}, "routing_key": "k", "payload": "hi", "payload_encoding": "string"}


def test_a_management_body_becomes_the_native_fields():
    body = {
        **BODY,
        "payload": "aGk=",
        "payload_encoding": "base64",
        "properties": {"delivery_mode": 2, "headers": {"n": 1}, "message_id": "m"},
    }
    assert publish_fields(body, vhost="/", exchange="e") == {
        "vhost": "/",
        "exchange": "e",
        "routing_key": "k",
        "body": "aGk=",
        "body_encoding": "base64",
        "delivery_mode": 2,
        "headers": {"n": 1},
        "message_id": "m",
        "mandatory": True,
    }


@pytest.mark.parametrize(("exchange", "native"), [("amq.default", ""), ("", ""), ("x", "x")])
def test_amq_default_is_the_default_exchange(exchange, native):
    assert publish_fields(BODY, vhost="/", exchange=exchange)["exchange"] == native


def test_the_native_checks_then_apply_the_same_way():
    body = {**BODY, "properties": {"priority": 5, "timestamp": 1769860800}}
    request = parse_publish_request(publish_fields(body, vhost="v", exchange="e"))
    assert (request.body, request.body_encoding, request.mandatory) == (b"hi", "text", True)
    assert (request.properties["priority"], request.properties["timestamp"]) == (5, 1769860800)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"properties", "routing_key", "payload", "payload_encoding"}),
        ({**BODY, "payload_encoding": "utf-8"}, {"payload_encoding"}),
        ({**BODY, "payload_encoding": {"a": 1}}, {"payload_encoding"}),
        ({**BODY, "payload_encoding": ["string"]}, {"payload_encoding"}),
        ({**BODY, "payload": None}, {"payload"}),
        ({**BODY, "payload": 5, "properties": "none"}, {"payload", "properties"}),
    ],
)
def test_the_bodys_own_shape_is_checked_naming_every_field(body, errors):
    with pytest.raises(PublishInvalid) as raised:
        publish_fields(body, vhost="v", exchange="e")
    assert set(raised.value.errors) == errors


@pytest.mark.parametrize(
    ("native", "management"),
    [
        ("body", "payload"),
        ("body_encoding", "payload_encoding"),
        ("routing_key", "routing_key"),
        ("vhost", "vhost"),
        ("exchange", "exchange"),
        ("priority", "properties.priority"),
        ("user_id", "properties.user_id"),
        ("headers", "properties.headers"),
        ("headers.2.value", "properties.headers.2.value"),
        ("bodyguard", "bodyguard"),
    ],
)
def test_native_field_names_become_the_management_bodys(native, management):
    assert management_field(native) == management
