"""The body RabbitMQ's management API takes to publish, read as this dashboard's own fields.

The management plugin's `POST /api/exchanges/{vhost}/{exchange}/publish` (rabbitmq-server,
`rabbit_mgmt_wm_exchange_publish.erl` and `rabbit_mgmt_format:to_basic_properties`) takes

    {"routing_key": "...", "payload": "...", "payload_encoding": "string" | "base64",
     "properties": {"delivery_mode": 2, "headers": {"attempt": 1}, ...}}

all four required; `properties` holds the basic properties by their AMQP names
(`delivery_mode`, `priority` and `timestamp` integers, the others strings), `headers`
among them as a JSON object whose values become AMQP types as this dashboard's object
form of `headers` makes them: integer, float, string, boolean, object (table), array;
null is refused. It always publishes as mandatory, calls the default exchange
`amq.default`, and answers `{"routed": true | false}`.

`publish_fields` turns such a body into the mapping `parse_publish_request` reads, so both
bodies go through the same checks and publish the same message; `management_field` names
a field of that mapping as the management body calls it, so an error points at what the
caller sent. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.publishing.fields import STRING_PROPERTIES, PublishInvalid
from flows.topology.records import DEFAULT_EXCHANGE_ALIAS

MANAGEMENT_PROPERTIES = (
    *STRING_PROPERTIES,
    "delivery_mode",
    "priority",
    "expiration",
    "timestamp",
    "headers",
)
# The body's fields, nested ones included; None: any value (a header table, say).
MANAGEMENT_BODY: dict[str, Any] = {
    "routing_key": None,
    "payload": None,
    "payload_encoding": None,
    "properties": dict.fromkeys(MANAGEMENT_PROPERTIES),
}
PAYLOAD_ENCODINGS = {"string": "text", "base64": "base64"}
# The management body's names for this dashboard's fields, where they differ.
RENAMED = {"body": "payload", "body_encoding": "payload_encoding"}


def publish_fields(body: Mapping[str, Any], *, vhost: str, exchange: str) -> dict[str, Any]:
    """The native fields for a management-API publish body to `exchange` in `vhost`.

    Raises PublishInvalid, keyed by the management body's names, for what the body's own
    shape gets wrong; the values themselves are checked by `parse_publish_request`.
    """
    errors = {
        name: "required (the management API requires it too)"
        for name in MANAGEMENT_BODY
        if name not in body
    }
    properties = body.get("properties", {})
    if not isinstance(properties, Mapping):
        errors["properties"] = "must be a JSON object of basic properties"
    payload = body.get("payload", "")
    if not isinstance(payload, str):
        errors["payload"] = "must be a string (base64 for binary, with payload_encoding base64)"
    encoding = body.get("payload_encoding", "string")
    # Any JSON value may arrive here (an object, a list): compare, never hash.
    if not isinstance(encoding, str) or encoding not in PAYLOAD_ENCODINGS:
        errors["payload_encoding"] = 'must be "string" or "base64"'
    if errors:
        raise PublishInvalid(errors)
    return {
        **properties,
        "vhost": vhost,
        "exchange": "" if exchange == DEFAULT_EXCHANGE_ALIAS else exchange,
        "routing_key": body["routing_key"],
        "body": payload,
        "body_encoding": PAYLOAD_ENCODINGS[encoding],
        "mandatory": True,
    }


def management_field(name: str) -> str:
    """`headers.1.value` -> `properties.headers.1.value`, `body` -> `payload`, and so on."""
    head, dot, rest = name.partition(".")
    if head in RENAMED:
        return RENAMED[head] + dot + rest
    if head in MANAGEMENT_PROPERTIES:
        return f"properties.{name}"
    return name


__all__ = ["MANAGEMENT_BODY", "MANAGEMENT_PROPERTIES", "management_field", "publish_fields"]
