"""Turn what the tap's queue receives into a tap event (`TapEvent`), in one place.

The tap event is what every viewer gets: `/ws/tap/` sends it as JSON as it is (README.md,
"The JSON stream: `/ws/tap/`", shows one), the live page renders it as a row. `TapEvent`
below is its shape; `_tap_event` is the only place one is made, and the entry points for
the two sources, `from_binding_delivery` and `from_firehose_delivery`, call it.

Two sources feed the tap:

- `bindings`: a copy of a message published to an exchange the tap queue is bound to. The
  delivery's exchange and routing key are the publisher's; nothing says where else it went.
- `firehose`: a message on `amq.rabbitmq.trace`. Its routing key is `publish.<exchange>` or
  `deliver.<queue>`, its body is the original body, and its headers describe the original
  message (`exchange_name`, `routing_keys`, `properties`, `node`, `vhost`, `connection`,
  `channel`, `user`, plus `routed_queues` on publish or `redelivered` on deliver). Exchange
  names may contain dots, so the exchange is read from the headers, never parsed out of the
  routing key; the queue name is whatever follows the fixed `deliver.` prefix.

Everything here is pure: no I/O, so every rule is a row in a table of tests, and tests build
their events with the same entry points the tap uses. Values that cross into JSON (headers,
properties) are made JSON-safe here and nowhere else, and masked here and nowhere else
(`flows.masking`: `FLOWS_MASK` names the headers, properties and JSON body keys whose values
never leave the server), so every viewer, export and filter sees only the masked value.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from collections.abc import Container, Mapping
from typing import Any, Literal, NamedTuple, TypedDict

from pika import BasicProperties
from pika.compat import long as amqp_long  # what pika decodes a 64-bit integer (`l`, `L`) as

from flows import json_codec
from flows.broker.naming import dashboard_object_name
from flows.decoding.masked import withheld_body
from flows.decoding.result import Decoded
from flows.decoding.tap_event import decode_events
from flows.masking import DEFAULT_MASK, MASKED, NO_MASK, Mask
from flows.tap.modes import CaptureMode

DEFAULT_PREVIEW_LIMIT = 64 * 1024
# The most one batch of a viewer's events spends on decoding bodies (`with_decoded`).
DECODE_BUDGET_S = 0.1
# A body whose preview is not the body byte for byte (pretty-printed JSON, a cut preview)
# also travels whole, in base64, up to this size: enough to publish it again or replay it.
DEFAULT_RAW_LIMIT = 1024 * 1024
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Every queue the tap declares starts with this; firehose deliveries from them are the tap
# watching itself (or another dashboard's tap) and are ignored.
TAP_QUEUE_PREFIX = dashboard_object_name("tap", "")

# AMQP basic properties, in the order the spec lists them (headers travel separately).
PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)

_PROPERTY_SET = frozenset(PROPERTY_NAMES)

EventKind = Literal["publish", "deliver"]


class _Body(TypedDict):
    preview: str
    encoding: Literal["json", "text", "base64"]
    size: int
    truncated: bool


class BodyPreview(_Body, total=False):
    """A message body as a viewer sees it (see `body_preview`)."""

    # Present (and False) only while a JSON body still waits for `prettify`. (Not written
    # `NotRequired[bool]`: Python 3.11 does not see it in a postponed annotation.)
    pretty: bool
    # The whole body in base64, present when `preview` is not the body byte for byte (see
    # `body_bytes`): JSON pretty-printed, or a preview cut at the limit.
    raw: str
    # True when `FLOWS_MASK` hid values of the body's JSON keys: the preview is the masked
    # body, and there is no `raw` (it would carry the hidden values).
    masked: bool


# The AMQP type of a header value, as `header_types` records it: a leaf type's name, or a
# table's types by key, or an array's types by position. JSON keeps a header's value but
# not its type (int or float, 32 or 64 bits, a timestamp or its text, bytes or text).
AmqpType = str | dict[str, Any]


class TapEvent(TypedDict):
    """One message published (`kind` publish) or delivered to a consumer (deliver).

    A dict at run time, so that it goes through the channel layer and into JSON unchanged;
    unknown parts are None (bindings mode never knows the route: `routed_queues` None),
    `unroutable` is True only when the broker said it routed the message nowhere.
    """

    seq: int  # per tap run, without holes: a jump means a viewer missed events
    kind: EventKind
    source: CaptureMode
    vhost: str
    exchange: str  # "" for the default exchange
    routing_key: str
    routing_keys: list[str]  # CC and BCC keys too (firehose)
    routed_queues: list[str] | None
    unroutable: bool | None
    queue: str | None  # deliver events: the queue the consumer took it from
    connection: str | None
    channel: int | None
    user: str | None
    redelivered: bool | None
    properties: dict[str, Any]  # AMQP basic properties without headers, unset ones left out
    headers: dict[str, Any]
    header_types: dict[str, AmqpType]  # each header's AMQP type (see `amqp_type`)
    body: BodyPreview
    received_at: float  # epoch seconds, when the tap read it


# --- JSON-safe values ----------------------------------------------------------------------------


_PLAIN_TYPES = frozenset({str, int, bool})


def json_safe(value: Any) -> Any:
    """A header or property value as plain JSON data.

    bytes become text when they are UTF-8 (else base64 in a tagged object), decimals their
    exact text, datetimes ISO 8601; tables and arrays recursively. Keys become text.
    """
    kind = type(value)
    if value is None or kind in _PLAIN_TYPES:  # the common case, checked fastest
        return value
    if kind is dict:  # header tables, before the slower checks against ABCs below
        return {
            (key if type(key) is str else _text_key(key)): (
                item if item is None or type(item) in _PLAIN_TYPES else json_safe(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # JSON has no NaN or infinity.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    # Plain members are kept inline rather than through a call each: headers such as
    # `x-death` are tables of tables, and this runs for every message the tap sees.
    if isinstance(value, Mapping):
        return {
            (key if type(key) is str else _text_key(key)): (
                item if item is None or type(item) in _PLAIN_TYPES else json_safe(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            item if item is None or type(item) in _PLAIN_TYPES else json_safe(item)
            for item in value
        ]
    return str(value)


def _text_key(key: Any) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    return str(key)


def amqp_type(value: Any) -> AmqpType:
    """The AMQP field type of a header value as pika decoded it, for sending it again.

    Leaf types: `string`, `bytes`, `int` (64-bit, `l`), `int32` (pika decodes every narrower
    integer as a plain int and sends one back as a signed 32-bit `I`), `float` (a double),
    `decimal`, `bool`, `timestamp`, `void`. Containers: `{"table": {key: type}}` and
    `{"array": [type, ...]}`.
    """
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, amqp_long):
        return "int"
    if isinstance(value, int):
        return "int32" if INT32_MIN <= value <= INT32_MAX else "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, Mapping):
        return {"table": {_text_key(key): amqp_type(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"array": [amqp_type(item) for item in value]}
    return "string"


def _timestamp(value: Any) -> Any:
    """The `timestamp` property as epoch seconds, whichever way the client decoded it."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp())
    return json_safe(value)


def split_properties(
    properties: Any,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, AmqpType]]:
    """(properties without headers, headers, the headers' AMQP types), the first two
    JSON-safe, unset properties left out.

    Accepts a pika `BasicProperties` or a mapping of property names (the firehose's
    `properties` header table). Runs for every message tapped: plain values (text and
    integers, nearly all of them) are taken as they are, without a call each.
    """
    if type(properties) is BasicProperties:
        # pika keeps every property as an instance attribute (None when unset), set in
        # spec order by its __init__: no sorting needed.
        source = {name: value for name, value in vars(properties).items() if value is not None}
        in_spec_order = True
    elif isinstance(properties, Mapping):
        source = {_text_key(key): value for key, value in properties.items()}
        in_spec_order = False
    else:
        source = vars(properties) if hasattr(properties, "__dict__") else {}
        in_spec_order = False
    result: dict[str, Any] = {}
    raw_headers = None
    for name, value in source.items():
        if value is None:
            continue
        if name == "headers":
            raw_headers = value
        elif name == "timestamp":
            result[name] = _timestamp(value)
        elif name in _PROPERTY_SET:
            result[name] = value if type(value) in _PLAIN_TYPES else json_safe(value)
    if not in_spec_order and len(result) > 1:  # spec order, whatever order they came in
        result = {name: result[name] for name in PROPERTY_NAMES if name in result}
    if not isinstance(raw_headers, dict | Mapping) or not raw_headers:
        return result, {}, {}
    return result, json_safe(raw_headers), header_types(raw_headers)


def header_types(headers: Mapping[Any, Any]) -> dict[str, AmqpType]:
    """Each header's AMQP type (`amqp_type`), text and plain integers without a call."""
    types: dict[str, AmqpType] = {}
    for key, value in headers.items():
        kind = type(value)
        if kind is str:
            amqp: AmqpType = "string"
        elif kind is int:  # not bool, not pika's 64-bit `long`: their types are their own
            amqp = "int32" if INT32_MIN <= value <= INT32_MAX else "int"
        else:
            amqp = amqp_type(value)
        types[key if type(key) is str else _text_key(key)] = amqp
    return types


# --- bodies --------------------------------------------------------------------------------------


def body_preview(
    body: bytes,
    *,
    content_type: str | None = None,
    limit: int = DEFAULT_PREVIEW_LIMIT,
    pretty: bool = True,
    mask: Mask = DEFAULT_MASK,
    raw_limit: int = DEFAULT_RAW_LIMIT,
) -> BodyPreview:
    """`{"preview", "encoding": json|text|base64, "size", "truncated"}` for a message body.

    JSON is pretty-printed when the whole body parses (whatever the content type says: many
    publishers leave it unset). UTF-8 text is shown as text. Anything else is base64. The
    preview covers at most `limit` bytes of the body; a longer body is cut and `truncated`.

    The values of a JSON body's keys that `mask` hides are replaced before anything else,
    so a long JSON body is masked whole, then cut. Text and binary bodies are not masked.

    Pretty-printing costs ten times the rest (Python's JSON encoder has no fast path with
    indentation), and the tap sees tens of thousands of messages a second of which a viewer
    shows a few hundred: with `pretty=False` a JSON body keeps its text, marked
    `"pretty": False`, and `prettify` finishes it once it is about to be shown.

    Where the preview is not the body byte for byte (pretty-printed JSON, a cut preview),
    `raw` carries the whole body in base64, for bodies of at most `raw_limit` bytes.
    """
    size = len(body)
    truncated = size > limit
    head = body[:limit] if truncated else body
    text = _utf8_prefix(head, allow_cut_character=truncated)
    if text is None:
        preview: BodyPreview = {
            "preview": base64.b64encode(head).decode("ascii"),
            "encoding": "base64",
            "size": size,
            "truncated": truncated,
        }
        return _with_raw(preview, body, raw_limit) if truncated else preview
    if truncated and mask and _may_be_json(text, content_type):
        masked_body = _masked_json_body(body, mask)
        if masked_body is not None:
            # Masked already: the masked text is cut like any other; and no raw copy, which
            # would carry what the mask hides.
            preview = body_preview(
                masked_body,
                content_type=content_type,
                limit=limit,
                pretty=pretty,
                mask=NO_MASK,
                raw_limit=0,
            )
            return {**preview, "size": size, "masked": True}
    if not truncated and _may_be_json(text, content_type):
        try:
            parsed = json_codec.loads(text)
        except ValueError:
            pass
        else:
            parsed, masked = mask.json_value(parsed, text)
            if not pretty:
                lazy: BodyPreview = {
                    "preview": json.dumps(parsed, ensure_ascii=False) if masked else text,
                    "encoding": "json",
                    "size": size,
                    "truncated": False,
                    "pretty": False,
                }
                if masked:
                    lazy["masked"] = True
                return lazy
            pretty_text = json_codec.pretty(parsed)
            result: BodyPreview = {
                "preview": pretty_text,
                "encoding": "json",
                "size": size,
                "truncated": False,
            }
            if masked:
                # The body as published holds what the mask hides: it never leaves whole.
                result["masked"] = True
                return result
            return result if pretty_text == text else _with_raw(result, body, raw_limit)
    plain: BodyPreview = {"preview": text, "encoding": "text", "size": size, "truncated": truncated}
    return _with_raw(plain, body, raw_limit) if truncated else plain


def _with_raw(preview: BodyPreview, body: bytes, raw_limit: int) -> BodyPreview:
    if len(body) <= raw_limit:
        preview["raw"] = base64.b64encode(body).decode("ascii")
    return preview


def body_bytes(body: Any) -> bytes | None:
    """The message body exactly as published, from an event's `body`, or None when the
    event does not carry all of it (a preview cut at a limit beyond the raw copy's).

    The one reader of the body's wire form: publishing again and replay use it.
    """
    if not isinstance(body, Mapping) or body.get("masked"):
        return None  # a masked body is not the one published
    try:
        raw = body.get("raw")
        if isinstance(raw, str):
            return base64.b64decode(raw, validate=True)
        preview = body.get("preview")
        if body.get("truncated") is not False or not isinstance(preview, str):
            return None
        if body.get("encoding") == "base64":
            return base64.b64decode(preview, validate=True)
        # Text, or JSON whose preview is its text (or whose pretty form is the text itself).
        return preview.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return None


def _masked_json_body(body: bytes, mask: Mask) -> bytes | None:
    """A whole JSON body with its hidden values masked, or None when nothing is hidden."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not mask.may_hide_in(text):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    masked, changed = mask.json_value(parsed, text)
    return json.dumps(masked, ensure_ascii=False).encode("utf-8") if changed else None


def prettify(event: TapEvent) -> TapEvent:
    """The event with its JSON body pretty-printed (see `body_preview`).

    A new event when there is work to do: events are shared, read-only, between viewers.
    """
    body = event.get("body")
    if not isinstance(body, dict) or body.get("pretty") is not False:
        return event
    original = body["preview"]
    pretty_text = json_codec.pretty(json_codec.loads(original))
    finished: BodyPreview = {
        "preview": pretty_text,
        "encoding": "json",
        "size": body.get("size"),
        "truncated": False,
    }
    if body.get("masked"):
        finished["masked"] = True  # and no raw: the original text is the masked one
    elif pretty_text != original:  # the preview is the whole body: within any raw limit
        finished["raw"] = base64.b64encode(original.encode("utf-8")).decode("ascii")
    return {**event, "body": finished}


def with_decoded(
    events: list[TapEvent], *, budget_s: float = DECODE_BUDGET_S
) -> list[Mapping[str, Any]]:
    """The events, each with a `decoded` field (`flows.decoding.Decoded.as_json`) when a
    decoder applies to its body (a Celery task, a pickle, msgpack, CBOR, protobuf, a
    compressed body); the others as they are.

    Not part of making an event: decoding costs, and only the events a viewer is sent are
    worth it (`/ws/tap/` calls this after filtering and sampling). At most `budget_s` is
    spent on one call; later events a decoder would read get a `decoded` saying so.
    An event whose decoded form FLOWS_MASK masked has its raw body withheld.
    """
    return [
        event if decoded is None else _with(event, decoded)
        for event, decoded in decode_events(events, budget_s=budget_s)
    ]


def _with(event: Mapping[str, Any], decoded: Decoded) -> Mapping[str, Any]:
    if decoded.masked:  # the raw bytes hold what the decoded form masks
        return {**event, "body": withheld_body(event.get("body")), "decoded": decoded.as_json()}
    return {**event, "decoded": decoded.as_json()}


def _utf8_prefix(data: bytes, *, allow_cut_character: bool) -> str | None:
    """Decode UTF-8; when the data was cut, forgive a character split by the cut."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end is at most 3 bytes short.
        if allow_cut_character and exc.start >= len(data) - 3 and exc.reason.startswith("unexp"):
            try:
                return data[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


def _may_be_json(text: str, content_type: str | None) -> bool:
    if content_type and "json" in content_type.lower():
        return True
    stripped = text.lstrip()
    return stripped[:1] in {"{", "["}


# --- events --------------------------------------------------------------------------------------


def _tap_event(
    *,
    seq: int,
    kind: EventKind,
    source: CaptureMode,
    vhost: str,
    exchange: str,
    routing_keys: list[str],
    properties: dict[str, Any],
    headers: dict[str, Any],
    header_types: dict[str, AmqpType],
    body: bytes,
    preview_limit: int,
    pretty: bool,
    mask: Mask,
    received_at: float,
    routed_queues: list[str] | None = None,
    queue: str | None = None,
    connection: str | None = None,
    channel: int | None = None,
    user: str | None = None,
    redelivered: bool | None = None,
) -> TapEvent:
    """The one place a `TapEvent` is made; `unroutable` follows from `routed_queues`.

    Also the one place values are masked: properties, headers (the firehose's
    `properties.headers` included) and the body's JSON keys, before the event exists.
    One literal, not a template and an update: this runs for every message tapped.
    """
    preview = body_preview(
        body,
        content_type=properties.get("content_type"),
        limit=preview_limit,
        pretty=pretty,
        mask=mask,
    )
    if mask:
        properties = mask.value(properties)
        headers = mask.headers(headers)
    return {
        "seq": seq,
        "kind": kind,
        "source": source,
        "vhost": vhost,
        "exchange": exchange,
        "routing_key": routing_keys[0] if routing_keys else "",
        "routing_keys": routing_keys,
        "routed_queues": routed_queues,
        "unroutable": None if routed_queues is None else not routed_queues,
        "queue": queue,
        "connection": connection,
        "channel": channel,
        "user": user,
        "redelivered": redelivered,
        "properties": properties,
        "headers": headers,
        "header_types": header_types,
        "body": preview,
        "received_at": received_at,
    }


def from_binding_delivery(
    *,
    seq: int,
    vhost: str,
    exchange: str,
    routing_key: str,
    properties: Any,
    body: bytes,
    received_at: float,
    preview_limit: int = DEFAULT_PREVIEW_LIMIT,
    pretty: bool = True,
    mask: Mask = DEFAULT_MASK,
) -> TapEvent:
    """A publish event from a copy delivered through one of the tap's bindings.

    Where the message went is unknown in this mode (`routed_queues` None), and so is who
    published it, except for a `user_id` property, which the broker validates.
    """
    props, headers, header_types = split_properties(properties)
    user = props.get("user_id")
    if user is not None and mask.hides("user_id"):
        user = MASKED
    return _tap_event(
        seq=seq,
        kind="publish",
        source="bindings",
        vhost=vhost,
        exchange=exchange,
        routing_keys=[routing_key],
        user=user,
        properties=props,
        headers=headers,
        header_types=header_types,
        body=body,
        preview_limit=preview_limit,
        pretty=pretty,
        mask=mask,
        received_at=received_at,
    )


class FirehoseRoute(NamedTuple):
    """What a trace message's routing key and headers say of the message's route: what a
    prefilter (`flows.tap.selection.Prefilter`) reads before an event is made of it."""

    kind: EventKind
    exchange: str
    routing_keys: list[str]
    suffix: str  # what follows `publish.` or `deliver.`: the queue, for a delivery
    headers_in: dict[str, Any]  # the trace headers, keys as text

    @property
    def observed(self) -> bool:
        """A publish carrying a `message_id`: the publish page looks for these
        (`flows.tap.observe`), so one is always made into an event."""
        original = self.headers_in.get("properties")
        return (
            self.kind == "publish"
            and isinstance(original, Mapping)
            and ("message_id" in original or b"message_id" in original)
        )


def firehose_route(
    routing_key: str, trace_headers: Mapping[str, Any] | None
) -> FirehoseRoute | None:
    """The route of a message on `amq.rabbitmq.trace`, or None to ignore it: deliveries
    from the dashboard's own tap queues, and anything that is not a trace message."""
    prefix, dot, suffix = routing_key.partition(".")
    kind: EventKind
    if prefix == "publish" and dot:
        kind = "publish"
    elif prefix == "deliver" and dot and not suffix.startswith(TAP_QUEUE_PREFIX):
        kind = "deliver"
    else:
        return None
    headers_in = {_text_key(key): value for key, value in (trace_headers or {}).items()}
    exchange = json_safe(headers_in.get("exchange_name"))
    if not isinstance(exchange, str):
        # Without the header, the routing key's suffix is the exchange for publish events.
        exchange = suffix if kind == "publish" else ""
    routing_keys = [
        key
        for key in (json_safe(item) for item in headers_in.get("routing_keys") or [])
        if isinstance(key, str)
    ]
    return FirehoseRoute(kind, exchange, routing_keys, suffix, headers_in)


def from_firehose_delivery(
    *,
    seq: int,
    vhost: str,
    routing_key: str,
    trace_headers: Mapping[str, Any] | None,
    body: bytes,
    received_at: float,
    preview_limit: int = DEFAULT_PREVIEW_LIMIT,
    existing_queues: Container[str] | None = None,
    pretty: bool = True,
    mask: Mask = DEFAULT_MASK,
    route: FirehoseRoute | None = None,
) -> TapEvent | None:
    """A publish or deliver event from a message on `amq.rabbitmq.trace`, or None to ignore
    (see `firehose_route`; `route`: already read by it, as the tap does to prefilter).
    `existing_queues`, when known, corrects the default exchange's `routed_queues`, which
    name the routing key's queue even when no such queue exists."""
    route = route or firehose_route(routing_key, trace_headers)
    if route is None:
        return None
    kind, exchange, routing_keys, suffix, headers_in = route
    original = headers_in.get("properties")
    props, headers, header_types = split_properties(
        original if isinstance(original, Mapping) else {}
    )
    channel = headers_in.get("channel")
    routed_queues: list[str] | None = None
    queue: str | None = None
    redelivered: bool | None = None
    if kind == "publish":
        if "routed_queues" in headers_in:  # RabbitMQ before 3.8 does not send it
            routed_queues = [
                name
                for name in (json_safe(item) for item in headers_in["routed_queues"] or [])
                if isinstance(name, str)
            ]
            if exchange == "" and existing_queues is not None:
                routed_queues = [name for name in routed_queues if name in existing_queues]
    else:
        queue = suffix
        raw_redelivered = headers_in.get("redelivered")
        if isinstance(raw_redelivered, bool | int):
            redelivered = bool(raw_redelivered)
    return _tap_event(
        seq=seq,
        kind=kind,
        source="firehose",
        vhost=vhost,
        exchange=exchange,
        routing_keys=routing_keys,
        routed_queues=routed_queues,
        queue=queue,
        connection=_optional_text(headers_in.get("connection")),
        channel=channel if isinstance(channel, int) and not isinstance(channel, bool) else None,
        user=_optional_text(headers_in.get("user")),
        redelivered=redelivered,
        properties=props,
        headers=headers,
        header_types=header_types,
        body=body,
        preview_limit=preview_limit,
        pretty=pretty,
        mask=mask,
        received_at=received_at,
    )


def correct_default_routes(event: TapEvent, existing_queues: Container[str]) -> TapEvent:
    """A firehose publish to the default exchange made without `existing_queues` (by a
    consumer process, `flows.tap.consumer_process`), corrected as `from_firehose_delivery`
    would have: only queues that exist were routed to. Changes `event` in place."""
    routed = event["routed_queues"]
    if event["kind"] == "publish" and event["exchange"] == "" and routed:
        kept = [name for name in routed if name in existing_queues]
        if len(kept) != len(routed):
            event["routed_queues"] = kept
            event["unroutable"] = not kept
    return event


def _optional_text(value: Any) -> str | None:
    safe = json_safe(value)
    return safe if isinstance(safe, str) else None
