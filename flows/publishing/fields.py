"""What a person asks to publish, parsed and checked: pure functions, no I/O.

The form and the JSON API both hand `parse_publish_request` a plain mapping of the same
field names; it returns a `PublishRequest` ready for pika, or raises `PublishInvalid`
with one message per field, so errors land next to the field that caused them.

AMQP limits that bite: exchange names, routing keys and the string properties are
"short strings" (at most 255 bytes of UTF-8); `expiration` is a string holding a
non-negative integer of milliseconds; `priority` is an octet (0-255); header integers
are signed 64-bit, and always sent as that type (`l`), as RabbitMQ's management API and UI
send them: pika would otherwise pick 32 or 64 bits by size, so a consumer's type would
depend on the value.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from pika.compat import long as amqp_long  # pika's marker for a signed 64-bit integer (`l`)

from flows.parsing import boolean_word

SHORTSTR_MAX_BYTES = 255
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_REPEAT = 100_000
MAX_RATE = 1_000_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

BODY_ENCODINGS = ("text", "json", "base64")
# The types a header row may name. The first six take JSON's values (integers in tables and
# lists are sent 64-bit); the rest reproduce any AMQP value a captured message carried:
# `int32` (`I`), `decimal`, `timestamp`, `bytes` (base64), `void` (no value), and `array`,
# a list whose items each name their type (`[{"type": "int32", "value": 1}]`). A `table`
# whose value is a JSON array is typed the same way: rows of `{"name", "type", "value"}`.
HEADER_TYPES = (
    "string",
    "int",
    "float",
    "bool",
    "table",
    "list",
    "int32",
    "decimal",
    "timestamp",
    "bytes",
    "void",
    "array",
)
# An AMQP decimal: a scale octet and a signed 32-bit value.
DECIMAL_MAX_SCALE = 255

# The string-valued basic properties, in the order the form shows them.
STRING_PROPERTIES = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "reply_to",
    "message_id",
    "type",
    "user_id",
    "app_id",
)
BodyEncoding = Literal["text", "json", "base64"]
# Every field `parse_publish_request` reads: the JSON API refuses any other.
PUBLISH_FIELDS = (
    "vhost",
    "exchange",
    "routing_key",
    "body",
    "body_encoding",
    "headers",
    *STRING_PROPERTIES,
    "delivery_mode",
    "priority",
    "expiration",
    "timestamp",
    "mandatory",
    "repeat",
    "rate",
)
# The keys of one header row (the form's rows, or the API's list form of `headers`).
HEADER_ROW_KEYS = ("name", "type", "value")
# The keys of one item of an `array` header.
ARRAY_ITEM_KEYS = ("type", "value")
# The header type each JSON value becomes, bool before int (a bool is an int in Python).
JSON_HEADER_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (int, "int"),
    (float, "float"),
    (dict, "table"),
    (list, "list"),
    (str, "string"),
)


class PublishInvalid(Exception):
    """The request cannot be published as it stands: `errors` maps field name to message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class PublishRequest:
    vhost: str
    exchange: str
    routing_key: str
    body: bytes
    body_encoding: BodyEncoding
    # The body as the form should show it again (JSON pretty-printed).
    body_display: str
    headers: dict[str, Any]
    # Basic properties as pika.BasicProperties keyword arguments (headers excluded).
    properties: dict[str, Any]
    mandatory: bool = True
    repeat: int = 1
    # Messages per second for repeats; None = as fast as confirms allow.
    rate: float | None = None
    message_id_generated: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def message_id(self) -> str | None:
        return self.properties.get("message_id")


# --- small parsers ------------------------------------------------------------------------------


def is_body_encoding(value: Any) -> TypeGuard[BodyEncoding]:
    return value in BODY_ENCODINGS


def encodable(text: str) -> bool:
    """False for strings UTF-8 cannot carry (lone surrogates, which JSON can smuggle in)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if not encodable(value):
            raise ValueError("contains characters that are not valid Unicode")
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise ValueError("expected text")


def check_shortstr(value: str, what: str) -> str | None:
    """An error message when `value` does not fit an AMQP short string."""
    size = len(value.encode("utf-8"))
    if size > SHORTSTR_MAX_BYTES:
        return f"{what} is {size} bytes long; AMQP allows at most {SHORTSTR_MAX_BYTES} bytes"
    return None


def parse_bool(value: Any, *, default: bool) -> bool:
    """A checkbox or JSON boolean: missing means `default`."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    meaning = boolean_word(str(value))
    if meaning is None:
        raise ValueError(f"expected true or false, got {_show(value)}")
    return meaning


def parse_int(value: Any, *, low: int, high: int, what: str = "a whole number") -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected {what}, got {_show(value)}")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text, 10)
        except ValueError:
            raise ValueError(f"expected {what}, got {_show(text)}") from None
    if not isinstance(value, int):
        raise ValueError(f"expected {what}")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}, got {value}")
    return value


def parse_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {_show(value)}") from None
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def parse_expiration(value: Any) -> str | None:
    """Per-message TTL: a string holding a non-negative integer of milliseconds."""
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else _text(value)
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        raise ValueError(
            f'must be a non-negative whole number of milliseconds, like "60000"; got {_show(text)}'
        )
    if int(text) > 2**32 - 1:
        raise ValueError("must be at most 4294967295 milliseconds")
    return text


def parse_delivery_mode(value: Any) -> int | None:
    if value is None or value == "":
        return None
    word = str(value).strip().lower()
    if word in {"2", "persistent"}:
        return 2
    if word in {"1", "transient", "non-persistent"}:
        return 1
    raise ValueError(f"must be persistent or transient, got {_show(value)}")


def parse_timestamp(value: Any) -> int | None:
    """Seconds since the epoch, or an ISO 8601 date-time (UTC when no offset is given)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return parse_int(value, low=0, high=INT64_MAX, what="seconds since the epoch")
    text = str(value).strip()
    if text.isdigit():
        return parse_int(text, low=0, high=INT64_MAX, what="seconds since the epoch")
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"must be seconds since the epoch or a date-time like 2026-01-31T12:00:00Z; "
            f"got {_show(text)}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise ValueError("must not be before 1970")
    return seconds


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- headers --------------------------------------------------------------------------------


def _check_header_value(value: Any, path: str) -> None:
    """Reject what AMQP tables cannot carry (or pika cannot encode) in a JSON value."""
    if isinstance(value, str):
        if not encodable(value):
            raise ValueError(f"{path}: contains characters that are not valid Unicode")
        return
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{path}: integer out of the signed 64-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: numbers must be finite")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_header_value(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not encodable(key):
                raise ValueError(f"{path}: a table key is not valid Unicode")
            if check_shortstr(key, "a table key"):
                raise ValueError(f"{path}: table key {_show(key)} is longer than 255 bytes")
            _check_header_value(item, f"{path}.{key}")
        return
    raise ValueError(f"{path}: unsupported value {_show(value)}")


def as_64_bit_integers(value: Any) -> Any:
    """A header value whose integers, nested ones included, pika encodes as 64-bit."""
    if isinstance(value, dict):
        return {key: as_64_bit_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_64_bit_integers(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return amqp_long(value)
    return value


def parse_header_value(kind: str, value: Any) -> Any:
    """One typed header value, as pika encodes it with that AMQP type. Text input (the
    form) and JSON values (the API) both work."""
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError("expected a string")
        _check_header_value(value, "value")
        return value
    if kind == "int":
        return amqp_long(parse_int(value, low=INT64_MIN, high=INT64_MAX, what="an integer"))
    if kind == "int32":
        # A plain int: pika sends one that fits 32 bits as `I`.
        return parse_int(value, low=INT32_MIN, high=INT32_MAX, what="a 32-bit integer")
    if kind == "float":
        return parse_float(value)
    if kind == "bool":
        if value is None or value == "":
            raise ValueError("expected true or false")
        return parse_bool(value, default=False)
    if kind == "decimal":
        return _parse_decimal(value)
    if kind == "timestamp":
        seconds = parse_timestamp(value)
        if seconds is None:
            raise ValueError("expected seconds since the epoch or a date-time")
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if kind == "bytes":
        if not isinstance(value, str):
            raise ValueError("expected base64 text")
        try:
            return base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("invalid base64 (use A-Z, a-z, 0-9, +, / and = padding)") from None
    if kind == "void":
        if value not in (None, ""):
            raise ValueError("a void header has no value: leave it empty")
        return None
    if kind in {"table", "list", "array"}:
        parsed = value
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"invalid JSON: {exc.msg} (line {exc.lineno})") from None
        if kind == "table" and isinstance(parsed, list):
            return _parse_typed_table(parsed)
        if kind == "array":
            if not isinstance(parsed, list):
                raise ValueError(
                    'expected a JSON array of typed items, like [{"type": "int32", "value": 1}]'
                )
            return _parse_typed_array(parsed)
        wanted = dict if kind == "table" else list
        if not isinstance(parsed, wanted):
            raise ValueError(
                'expected a JSON object, like {"a": 1}'
                if kind == "table"
                else 'expected a JSON array, like [1, "two"]'
            )
        _check_header_value(parsed, "value")
        return as_64_bit_integers(parsed)
    raise ValueError(f"unknown header type {_show(kind)}; one of {', '.join(HEADER_TYPES)}")


def _parse_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a decimal number, like 12.50")
    try:
        number = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ValueError(f"expected a decimal number, got {_show(value)}") from None
    if not number.is_finite():
        raise ValueError("expected a finite decimal number")
    # pika sends the normalised number: scale = digits after the point, value = the digits.
    exponent = number.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    scale = max(0, -exponent)
    digits = int(number.scaleb(scale))
    if scale > DECIMAL_MAX_SCALE or not INT32_MIN <= digits <= INT32_MAX:
        raise ValueError("an AMQP decimal holds at most 9 digits (a signed 32-bit value)")
    return number


def _parse_typed_table(rows: list[Any]) -> dict[str, Any]:
    """A table written as typed rows `[{"name", "type", "value"}]`."""
    if not all(isinstance(row, Mapping) for row in rows):
        raise ValueError('a typed table is a list of {"name", "type", "value"} rows')
    table, errors = parse_headers([dict(row) for row in rows], path="value")
    if errors:
        raise ValueError("; ".join(f"{where}: {message}" for where, message in errors.items()))
    return table


def _parse_typed_array(items: list[Any]) -> list[Any]:
    """An array written as typed items `[{"type", "value"}]`."""
    values = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or set(item) - set(ARRAY_ITEM_KEYS) or "type" not in item:
            raise ValueError(f'value.{index}: an array item is {{"type", "value"}}')
        try:
            values.append(parse_header_value(str(item["type"]), item.get("value")))
        except ValueError as exc:
            raise ValueError(f"value.{index}: {exc}") from None
    return values


def infer_header_type(value: Any) -> str:
    """The header type of a JSON value (the API's `{"name": value}` form)."""
    for python_type, kind in JSON_HEADER_TYPES:
        if isinstance(value, python_type):
            return kind
    raise ValueError(f"unsupported header value {_show(value)}")


def normalise_headers(raw: Any) -> list[dict[str, Any]]:
    """Headers as rows of {name, type, value}: accepts rows, or a JSON object of values."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, Mapping):
        rows = []
        for name, value in raw.items():
            try:
                kind = infer_header_type(value)
            except ValueError:
                kind = "invalid"
            rows.append({"name": name, "type": kind, "value": value})
        return rows
    if isinstance(raw, list) and all(isinstance(row, Mapping) for row in raw):
        return [dict(row) for row in raw]
    raise ValueError("headers must be an object of values or a list of {name, type, value}")


def parse_headers(
    rows: list[dict[str, Any]], *, path: str = "headers"
) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed header rows to a table; errors keyed `headers.<i>.name` / `headers.<i>.value`
    (`path` instead of `headers` for the rows of a typed table inside a header)."""
    headers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for index, row in enumerate(rows):
        unknown = [key for key in row if key not in HEADER_ROW_KEYS]
        for key in unknown:
            errors[f"{path}.{index}.{key}"] = "unknown field; a header row has name, type, value"
        if unknown:
            continue
        name = row.get("name")
        kind = row.get("type") or "string"
        value = row.get("value")
        if (name is None or name == "") and (value is None or value == "") and kind != "void":
            continue  # an empty row of the form
        where = f"{path}.{index}"
        if not isinstance(name, str) or not name:
            errors[f"{where}.name"] = "a header needs a name"
            continue
        if not encodable(name):
            errors[f"{where}.name"] = "contains characters that are not valid Unicode"
            continue
        problem = check_shortstr(name, "the header name")
        if problem:
            errors[f"{where}.name"] = problem
            continue
        if name in headers:
            errors[f"{where}.name"] = f"header {_show(name)} is given twice"
            continue
        if kind == "invalid":
            errors[f"{where}.value"] = f"unsupported value {_show(value)}"
            continue
        try:
            headers[name] = parse_header_value(str(kind), value)
        except ValueError as exc:
            errors[f"{where}.value"] = str(exc)
    return headers, errors


# --- the body -----------------------------------------------------------------------------------


def parse_body(text: Any, encoding: Any, *, max_bytes: int) -> tuple[bytes, str]:
    """The body's bytes and how to show it again; raises ValueError with the field's message."""
    if text is None:
        text = ""
    if encoding == "json" and isinstance(text, dict | list | int | float | bool):
        # The JSON API may send a JSON body as the value itself rather than as text.
        try:
            text = json.dumps(text, allow_nan=False)
        except ValueError:
            raise ValueError("the JSON body must not contain NaN or infinity") from None
    if not isinstance(text, str):
        raise ValueError("the body must be a string (or, with body_encoding json, any JSON value)")
    if not encodable(text):
        raise ValueError("the body contains characters that are not valid Unicode")
    if not is_body_encoding(encoding):
        raise ValueError(f"unknown body encoding {_show(encoding)}; one of text, json, base64")
    if encoding == "text":
        body, display = text.encode("utf-8"), text
    elif encoding == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
        display = json.dumps(document, indent=2, ensure_ascii=False)
        if not encodable(display):  # "\ud800" escapes decode to lone surrogates
            raise ValueError("the JSON holds characters that are not valid Unicode")
        body = display.encode("utf-8")
    else:
        compact = "".join(text.split())
        try:
            body = base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("invalid base64 (use A-Z, a-z, 0-9, +, / and = padding)") from None
        display = text
    if len(body) > max_bytes:
        raise ValueError(f"the body is {len(body):,} bytes; the limit is {max_bytes:,} bytes")
    return body, display


# --- the whole request --------------------------------------------------------------------------


def parse_publish_request(
    raw: Mapping[str, Any],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    new_message_id: Any = None,
    generate_message_id: bool = True,
) -> PublishRequest:
    """Check every field; raise PublishInvalid listing every problem at once.

    `generate_message_id=False` leaves a message without `message_id` without one (a
    captured message published again keeps its properties exactly)."""
    errors: dict[str, str] = {}
    make_id = new_message_id or (lambda: str(uuid.uuid4()))

    def text_field(name: str, *, shortstr: bool = True, what: str | None = None) -> str:
        try:
            value = _text(raw.get(name))
        except ValueError as exc:
            errors[name] = str(exc) if isinstance(raw.get(name), str) else "must be a string"
            return ""
        if shortstr:
            problem = check_shortstr(value, what or f"the {name.replace('_', ' ')}")
            if problem:
                errors[name] = problem
        return value

    vhost = text_field("vhost")
    if not vhost and "vhost" not in errors:
        errors["vhost"] = "choose a vhost"
    exchange = text_field("exchange", what="the exchange name")
    routing_key = text_field("routing_key", what="the routing key")

    body_encoding = raw.get("body_encoding") or "text"
    body, body_display = b"", ""
    try:
        body, body_display = parse_body(raw.get("body"), body_encoding, max_bytes=max_body_bytes)
    except ValueError as exc:
        errors["body"] = str(exc)
        raw_body = raw.get("body")
        body_display = raw_body if isinstance(raw_body, str) else ""

    headers: dict[str, Any] = {}
    try:
        rows = normalise_headers(raw.get("headers"))
    except ValueError as exc:
        errors["headers"] = str(exc)
    else:
        headers, header_errors = parse_headers(rows)
        errors.update(header_errors)

    properties: dict[str, Any] = {}
    for name in STRING_PROPERTIES:
        value = text_field(name)
        if value:
            properties[name] = value
    generated = False
    if generate_message_id and "message_id" not in properties and "message_id" not in errors:
        properties["message_id"] = str(make_id())
        generated = True

    converters = {
        "delivery_mode": parse_delivery_mode,
        "priority": lambda v: (
            None if v is None or v == "" else parse_int(v, low=0, high=255, what="0-255")
        ),
        "expiration": parse_expiration,
        "timestamp": parse_timestamp,
    }
    for name, convert in converters.items():
        try:
            converted = convert(raw.get(name))
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        if converted is not None:
            properties[name] = converted

    options = _sending_options(raw, errors)
    if errors:
        raise PublishInvalid(errors)
    assert is_body_encoding(body_encoding)  # else parse_body failed, and errors said so
    return PublishRequest(
        vhost=vhost,
        exchange=exchange,
        routing_key=routing_key,
        body=body,
        body_encoding=body_encoding,
        body_display=body_display,
        headers=headers,
        properties=properties,
        message_id_generated=generated,
        **options,
    )


def _sending_options(raw: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """How to send: `mandatory`, `repeat` and `rate`; a bad one goes to `errors`."""
    options: dict[str, Any] = {"mandatory": True, "repeat": 1, "rate": None}
    try:
        options["mandatory"] = parse_bool(raw.get("mandatory"), default=True)
    except ValueError as exc:
        errors["mandatory"] = str(exc)
    try:
        if raw.get("repeat") not in (None, ""):
            options["repeat"] = parse_int(raw.get("repeat"), low=1, high=MAX_REPEAT, what="a count")
    except ValueError as exc:
        errors["repeat"] = str(exc)
    try:
        if raw.get("rate") not in (None, "", "max"):
            rate = parse_float(raw.get("rate"))
            if not 0 < rate <= MAX_RATE:
                raise ValueError(f"must be above 0 and at most {MAX_RATE:,} messages per second")
            options["rate"] = rate
    except ValueError as exc:
        errors["rate"] = str(exc)
    return options


def form_to_raw(data: Any) -> dict[str, Any]:
    """A submitted form (a QueryDict) to the mapping `parse_publish_request` reads.

    Header rows arrive as parallel lists `header_name`, `header_type`, `header_value`.
    A checkbox is absent when unticked, so the form also sends `mandatory_present`.
    """
    raw: dict[str, Any] = {key: data.get(key) for key in data if not key.startswith("header_")}
    names = data.getlist("header_name")
    kinds = data.getlist("header_type")
    values = data.getlist("header_value")
    raw["headers"] = [
        {
            "name": name,
            "type": kinds[index] if index < len(kinds) else "string",
            "value": values[index] if index < len(values) else "",
        }
        for index, name in enumerate(names)
    ]
    if data.get("mandatory_present"):
        raw["mandatory"] = "true" if data.get("mandatory") else "false"
    return raw
