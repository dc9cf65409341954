"""What one publish of a scenario's message template sends: pure, no I/O.

Placeholders are filled per publish: `{seq}` (the publisher's message number, from 1),
`{uuid}` (one fresh UUID per message, the same everywhere in it), `{timestamp}` (Unix
seconds) and `{now}` (ISO 8601, UTC). A string that is exactly `{seq}` or `{timestamp}`
becomes a number, so `user_id = "{seq}"` is sent as an integer.

A pickle body is made with `pickle.dumps` of plain data (dicts, lists, strings, numbers),
to show what such a message looks like on the wire. Nothing in the dashboard ever unpickles:
on a shared broker, `pickle.loads` of a message runs whatever its publisher wanted.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flows.demo.scenario import MessageSpec

CONTENT_TYPES = {
    "json": "application/json",
    "text": "text/plain",
    "pickle": "application/x-python-serialize",
}


@dataclass(frozen=True)
class MessageContext:
    seq: int
    uuid: str
    timestamp: int
    now: str

    @classmethod
    def fresh(cls, seq: int, *, now: dt.datetime | None = None) -> MessageContext:
        moment = now or dt.datetime.now(dt.UTC)
        return cls(
            seq=seq,
            uuid=str(uuid.uuid4()),
            timestamp=int(moment.timestamp()),
            now=moment.isoformat(timespec="seconds"),
        )

    def values(self) -> dict[str, Any]:
        return {"seq": self.seq, "uuid": self.uuid, "timestamp": self.timestamp, "now": self.now}


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready for `basic_publish`: `properties` are `pika.BasicProperties` keywords."""

    routing_key: str
    body: bytes
    properties: dict[str, Any]


def fill(value: Any, context: MessageContext) -> Any:
    """`value` with every placeholder in its strings filled (tables and arrays walked)."""
    if isinstance(value, str):
        values = context.values()
        for name in ("seq", "timestamp"):
            if value == "{" + name + "}":
                return values[name]
        return value.format_map(values)
    if isinstance(value, Mapping):
        return {key: fill(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, context) for item in value]
    return value


def _json_default(value: Any) -> str:
    # TOML has dates and times; JSON does not.
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def encode_body(body: Any, serializer: str) -> bytes:
    if serializer == "json":
        return json.dumps(body, ensure_ascii=False, default=_json_default).encode()
    if serializer == "pickle":
        return pickle.dumps(body, protocol=4)
    return str(body).encode()


def render(message: MessageSpec, context: MessageContext) -> OutgoingMessage:
    properties: dict[str, Any] = {"content_type": CONTENT_TYPES[message.serializer]}
    properties.update(fill(dict(message.properties), context))
    if "expiration" in properties:
        # AMQP's expiration is a string of milliseconds; the file may give a number.
        properties["expiration"] = str(properties["expiration"])
    if message.headers:
        properties["headers"] = fill(dict(message.headers), context)
    return OutgoingMessage(
        routing_key=message.routing_key,
        body=encode_body(fill(message.body, context), message.serializer),
        properties=properties,
    )
