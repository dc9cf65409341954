"""A captured message as the publish fields that send it again: pure functions, no I/O.

A tap event (`flows.tap.events.TapEvent`, or a line of a JSON Lines export) keeps header
values as JSON and their AMQP types beside them (`header_types`), the basic properties, and
the body exactly (`flows.tap.events.body_bytes`). `publish_fields` turns it into the mapping
`flows.publishing.fields.parse_publish_request` reads, so "Publish again", "Edit and
publish" and `manage.py replay` all go through the one publishing path, and the message
comes out with the same exchange, routing key, header types, properties and body bytes.

What cannot be reproduced, and why: an integer narrower than 32 bits, or an unsigned one,
comes back as a signed 32-bit integer (pika decodes them all as one Python int); a 32-bit
float comes back as a double; `cluster_id` (deprecated) is not sent.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from flows.masking import MASKED
from flows.publishing.fields import STRING_PROPERTIES, infer_header_type
from flows.tap.events import body_bytes

# Leaf types a plain JSON table or list (the form's `table`/`list`) carries exactly: its
# integers go out 64-bit, its numbers with a point as doubles.
_PLAIN_LEAVES = frozenset({"string", "int", "float", "bool", "void"})


class NotRepublishable(ValueError):
    """This captured message cannot be sent again as it was; the message says why."""


# --- headers --------------------------------------------------------------------------------


def _plain(kind: Any) -> bool:
    """Whether values of AMQP type `kind` survive as plain JSON inside a table or list."""
    if isinstance(kind, str):
        return kind in _PLAIN_LEAVES
    if isinstance(kind, Mapping) and "table" in kind:
        return all(_plain(item) for item in (kind["table"] or {}).values())
    if isinstance(kind, Mapping) and "array" in kind:
        return all(_plain(item) for item in kind["array"] or [])
    return False


def _json_kind(value: Any) -> Any:
    """The type of a header known only by its JSON value (an event without types)."""
    if value is None:
        return "void"
    try:
        kind = infer_header_type(value)
    except ValueError:
        return "string"
    if kind == "table":
        return {"table": {key: _json_kind(item) for key, item in value.items()}}
    if kind == "list":
        return {"array": [_json_kind(item) for item in value]}
    return kind


def typed_value(kind: Any, value: Any) -> tuple[str, Any]:
    """(header row type, row value) for a JSON-safe header value of AMQP type `kind`."""
    if isinstance(kind, Mapping) and "table" in kind:
        types = kind["table"] if isinstance(kind["table"], Mapping) else {}
        table = value if isinstance(value, Mapping) else {}
        if _plain(kind):
            return "table", dict(table)
        return "table", [
            _row(str(name), types.get(name, _json_kind(item)), item) for name, item in table.items()
        ]
    if isinstance(kind, Mapping) and "array" in kind:
        types_list = kind["array"] if isinstance(kind["array"], list) else []
        items = value if isinstance(value, list) else []
        if _plain(kind) and len(types_list) == len(items):
            return "list", list(items)
        typed_items = []
        for index, item in enumerate(items):
            item_kind = types_list[index] if index < len(types_list) else _json_kind(item)
            item_type, item_value = typed_value(item_kind, item)
            typed_items.append({"type": item_type, "value": item_value})
        return "array", typed_items
    if kind == "bytes":
        # json_safe wrote UTF-8 bytes as text, anything else as {"base64": ...}.
        if isinstance(value, Mapping) and isinstance(value.get("base64"), str):
            return "bytes", value["base64"]
        return "bytes", base64.b64encode(str(value).encode("utf-8")).decode("ascii")
    if kind == "void":
        return "void", None
    if kind == "string":
        return "string", value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(kind, str) and kind in {"int", "int32", "float", "bool", "decimal", "timestamp"}:
        return kind, value
    # An unknown type name (a newer export?): the value's JSON type, which always is known.
    return typed_value(_json_kind(value), value)


def _row(name: str, kind: Any, value: Any) -> dict[str, Any]:
    row_type, row_value = typed_value(kind, value)
    return {"name": name, "type": row_type, "value": row_value}


def header_rows(headers: Any, header_types: Any = None) -> list[dict[str, Any]]:
    """The publish form's header rows `{"name", "type", "value"}` for an event's headers.

    Types come from `header_types` (the tap's record); an event without them (an older
    export) is typed from its JSON values, as the API's object form of `headers` is.
    """
    if not isinstance(headers, Mapping):
        return []
    types = header_types if isinstance(header_types, Mapping) else {}
    return [
        _row(str(name), types.get(name) or _json_kind(value), value)
        for name, value in headers.items()
    ]


def as_form_text(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their values as the form's text inputs hold them (JSON for containers)."""
    shown = []
    for row in rows:
        value = row["value"]
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            text = ""
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False)
        shown.append({**row, "value": text})
    return shown


# --- the whole message ------------------------------------------------------------------------


def why_not(event: Mapping[str, Any]) -> str | None:
    """Why this captured message cannot be published again as it was, or None."""
    body = event.get("body")
    if (
        _holds_masked(event.get("headers"))
        or _holds_masked(event.get("properties"))
        or (isinstance(body, Mapping) and body.get("masked"))
    ):
        return (
            "Some of this message's values are hidden (FLOWS_MASK), so it cannot be sent "
            "again as it was (use Edit and publish and fill them in)."
        )
    if body_bytes(body) is None:
        size = body.get("size") if isinstance(body, Mapping) else None
        of = f" of {size:,} bytes" if isinstance(size, int) else ""
        return (
            f"Only part of this body{of} was kept, so it cannot be sent again as it was "
            "(use Edit and publish to send the part shown)."
        )
    return None


def _holds_masked(value: Any) -> bool:
    """Whether a header or property value is, or holds, the mask's replacement."""
    if isinstance(value, str):
        return value == MASKED
    if isinstance(value, Mapping):
        return any(_holds_masked(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_masked(item) for item in value)
    return False


def publish_fields(
    event: Mapping[str, Any],
    *,
    exchange_map: Mapping[str, str] | None = None,
    for_the_form: bool = False,
) -> dict[str, Any]:
    """The publish fields that send `event`'s message again, exactly.

    Raises NotRepublishable when the event does not carry the whole body. `exchange_map`
    renames exchanges (replay onto another vhost's names). `for_the_form`: values as the
    publish form's inputs show them, the body as text when it is UTF-8 (still exact), and a
    body kept only in part is shown as far as it goes instead of refused.
    """
    refusal = why_not(event)
    body = body_bytes(event.get("body"))
    if refusal is not None and not for_the_form:
        raise NotRepublishable(refusal)
    exchange = str(event.get("exchange") or "")
    if exchange_map:
        exchange = exchange_map.get(exchange, exchange)
    fields: dict[str, Any] = {
        "vhost": str(event.get("vhost") or ""),
        "exchange": exchange,
        "routing_key": str(event.get("routing_key") or ""),
        "mandatory": True,
    }
    fields.update(_body_fields(event, body, for_the_form=for_the_form))
    rows = header_rows(event.get("headers"), event.get("header_types"))
    fields["headers"] = as_form_text(rows) if for_the_form else rows
    properties = event.get("properties") if isinstance(event.get("properties"), Mapping) else {}
    assert isinstance(properties, Mapping)
    for name in STRING_PROPERTIES:
        value = properties.get(name)
        if value is not None:
            fields[name] = str(value)
    for name in ("priority", "expiration", "timestamp"):
        if properties.get(name) is not None:
            fields[name] = str(properties[name]) if for_the_form else properties[name]
    mode = properties.get("delivery_mode")
    if mode in (1, 2):
        fields["delivery_mode"] = "persistent" if mode == 2 else "transient"
    return fields


def _body_fields(
    event: Mapping[str, Any], body: bytes | None, *, for_the_form: bool
) -> dict[str, Any]:
    if body is None:  # the form only: the part that was kept
        preview = event.get("body") if isinstance(event.get("body"), Mapping) else {}
        assert isinstance(preview, Mapping)
        encoding = "base64" if preview.get("encoding") == "base64" else "text"
        return {"body": str(preview.get("preview") or ""), "body_encoding": encoding}
    if for_the_form:
        try:
            return {"body": body.decode("utf-8"), "body_encoding": "text"}
        except UnicodeDecodeError:
            pass
    return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}
