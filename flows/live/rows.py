"""A tap event (`flows.tap.events.TapEvent`) as a feed row, as the graph's route, as details.

Everything here is plain data for templates, which escape it. The row carries the event
itself as JSON (for export and for the details request) and the route as JSON (for the
graph), both placed in data attributes by the template and read by the page script.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from flows.decoding import Decoded, decode_event
from flows.decoding.masked import WITHHELD_BODY_NOTE, withheld_body
from flows.decoding.tap_event import worth_decoding
from flows.live.body import (
    MAX_JSON_TOKENS,
    DecodedBody,
    Token,
    decode_body,
    human_size,
    json_tokens,
)
from flows.masking import MASKED
from flows.routing_rules.prediction import Prediction
from flows.tap.events import PROPERTY_NAMES
from flows.topology.records import Consumer, Topology, exchange_label

# A row keeps at most this much of the body preview (for details and export): 500 rows of
# the tap's full 64 KiB previews would hold tens of megabytes in the page.
ROW_PREVIEW_LIMIT = 16 * 1024

# AMQP basic properties in the order of the spec, so details read the same every time.
PROPERTY_ORDER = PROPERTY_NAMES


def show_value(value: Any) -> str:
    """A property or header value as a person reads it: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def clock(epoch: Any) -> str:
    """HH:MM:SS.mmm (UTC) of a receive time; empty when the time is missing."""
    if not isinstance(epoch, int | float) or isinstance(epoch, bool):
        return ""
    seconds = time.gmtime(epoch)
    return time.strftime("%H:%M:%S", seconds) + f".{int((epoch % 1) * 1000):03d}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return ()
    return tuple(str(item) for item in value)


def kept_for_the_page(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event as the page keeps it: a long body preview is cut to ROW_PREVIEW_LIMIT, and
    the whole body (`raw`) kept only for bodies of at most that size.

    A body only a decoder reads (msgpack, CBOR, pickle, compressed, ...) is decoded here too
    when it may hold what `FLOWS_MASK` hides: if the decoded form masks anything, the page
    gets the withheld body, never the bytes (the tap can mask JSON itself, not these)."""
    if worth_decoding(event):
        decoded = decode_event(event)
        if decoded is not None and decoded.masked:
            event = {**event, "body": withheld_body(event.get("body"))}
    body = event.get("body")
    if not isinstance(body, Mapping):
        return event
    preview = body.get("preview")
    size = body.get("size")
    raw_too_long = "raw" in body and not (isinstance(size, int) and size <= ROW_PREVIEW_LIMIT)
    cut = isinstance(preview, str) and len(preview) > ROW_PREVIEW_LIMIT
    if not raw_too_long and not cut:
        return event
    kept = {key: value for key, value in body.items() if key != "raw" or not raw_too_long}
    if cut:
        assert isinstance(preview, str)
        kept.update(preview=preview[:ROW_PREVIEW_LIMIT], truncated=True)
    return {**event, "body": kept}


# --- consumers ----------------------------------------------------------------------------------


def delivering_consumer(topology: Topology | None, event: Mapping[str, Any]) -> Consumer | None:
    """The consumer that got a delivery: same queue, connection and channel number.

    Deliver events name the connection and channel, not the consumer tag; the management
    API's consumer list ties the two together. None when it cannot tell (a basic.get, a
    consumer gone since, or two consumers of the queue on one channel).
    """
    if topology is None:
        return None
    queue = event.get("queue")
    candidates = [
        consumer
        for consumer in topology.consumers_by_queue.get(_text(queue), ())
        if consumer.connection == event.get("connection")
        and consumer.channel_number == event.get("channel")
    ]
    return candidates[0] if len(candidates) == 1 else None


def consumer_for_delivery(topology: Topology | None, event: Mapping[str, Any]) -> str | None:
    """The tag of `delivering_consumer`: what the graph knows a consumer node by."""
    consumer = delivering_consumer(topology, event)
    return consumer.consumer_tag if consumer else None


# --- the feed row -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    seq: int
    kind: str  # publish | deliver
    time: str
    exchange: str
    exchange_label: str
    routing_key: str
    queues: tuple[str, ...] = ()
    predicted: bool = False  # queues and unroutable come from the dry-run, not the broker
    unroutable: bool = False
    route_unknown: bool = False  # bindings mode, and the dry-run could not tell
    queue: str | None = None  # deliver: the queue it came from
    consumer: str | None = None  # deliver: its label (connection name, else tag), or conn/channel
    consumer_tag: str | None = None  # deliver: when the topology names the consumer
    redelivered: bool = False
    size: str = ""
    event_json: str = ""
    route_json: str = ""
    notes: tuple[str, ...] = field(default=())


class _RowCommon(TypedDict):
    """The `Row` fields every kind of row fills the same way."""

    seq: int
    kind: str
    time: str
    exchange: str
    exchange_label: str
    routing_key: str
    redelivered: bool
    size: str
    event_json: str


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping (a JSON object), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def build_row(
    event: Mapping[str, Any],
    *,
    prediction: Prediction | None = None,
    topology: Topology | None = None,
) -> Row:
    kind = _text(event.get("kind")) or "publish"
    exchange = _text(event.get("exchange"))
    size = _mapping(event.get("body")).get("size")
    seq = event.get("seq")
    common: _RowCommon = {
        "seq": seq if isinstance(seq, int) else 0,
        "kind": kind,
        "time": clock(event.get("received_at")),
        "exchange": exchange,
        "exchange_label": exchange_label(exchange),
        "routing_key": _text(event.get("routing_key")),
        "redelivered": event.get("redelivered") is True,
        "size": human_size(size) if isinstance(size, int) and not isinstance(size, bool) else "",
        "event_json": json.dumps(
            kept_for_the_page(event), ensure_ascii=False, separators=(",", ":"), default=str
        ),
    }
    route: dict[str, Any]  # the graph's route (static/flows/graph.js reads it)

    if kind == "deliver":
        queue = _text(event.get("queue"))
        consumer = delivering_consumer(topology, event)
        tag = consumer.consumer_tag if consumer else None
        who = consumer.label if consumer else None
        if who is None and event.get("channel") is not None:
            who = f"{_text(event.get('connection'))} ch {event.get('channel')}".strip()
        route = {"kind": "deliver", "queue": queue, "consumer_tag": tag}
        return Row(
            **common,
            queue=queue,
            consumer=who,
            consumer_tag=tag,
            route_json=json.dumps(route, ensure_ascii=False),
        )

    routed = event.get("routed_queues")
    if routed is not None:
        queues = _str_list(routed)
        unroutable = event.get("unroutable") is True or not queues
        hops = _known_hops(exchange, queues, prediction, event)
        route = {"kind": "publish", "exchange": exchange, "hops": hops, "unroutable": unroutable}
        return Row(
            **common,
            queues=queues,
            unroutable=unroutable,
            route_json=json.dumps(route, ensure_ascii=False),
        )

    # Bindings mode: the broker does not say; the dry-run predicts, and says so.
    if prediction is None or prediction.why_unknown:
        route = {"kind": "publish", "exchange": exchange, "hops": [], "unroutable": False}
        return Row(
            **common,
            route_unknown=True,
            notes=(prediction.why_unknown,) if prediction and prediction.why_unknown else (),
            route_json=json.dumps(route, ensure_ascii=False),
        )
    route = {
        "kind": "publish",
        "exchange": exchange,
        "hops": [dict(hop) for hop in prediction.hops],
        "unroutable": prediction.unroutable,
    }
    return Row(
        **common,
        queues=prediction.queues,
        predicted=True,
        unroutable=prediction.unroutable,
        notes=prediction.notes,
        route_json=json.dumps(route, ensure_ascii=False),
    )


def _known_hops(
    exchange: str,
    queues: tuple[str, ...],
    prediction: Prediction | None,
    event: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The hops to draw for a firehose publish: exactly its routed queues.

    When the dry-run reached a routed queue through exchange-to-exchange bindings, its chain
    is drawn; a routed queue the dry-run did not predict gets a direct hop.
    """
    hops: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    routing_key = _text(event.get("routing_key"))
    for queue in queues:
        chain = prediction.paths.get(queue) if prediction is not None else None
        chain = chain or [
            {
                "source": exchange,
                "destination": queue,
                "destination_type": "queue",
                "routing_key": routing_key,
            },
        ]
        for hop in chain:
            key = (hop["source"], hop["destination"], hop["destination_type"])
            if key not in seen:
                seen.add(key)
                hops.append(dict(hop))
    return hops


# --- details ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XDeath:
    queue: str
    reason: str
    count: str
    exchange: str
    routing_keys: tuple[str, ...]
    time: str


def x_death_history(headers: Mapping[str, Any]) -> tuple[XDeath, ...]:
    """The `x-death` header of a dead-lettered message, newest first."""
    entries = headers.get("x-death")
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        return ()
    history = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        history.append(
            XDeath(
                queue=_text(entry.get("queue")),
                reason=_text(entry.get("reason")),
                count=_text(entry.get("count")),
                exchange=exchange_label(_text(entry.get("exchange"))),
                routing_keys=_str_list(entry.get("routing-keys")),
                time=_text(entry.get("time")),
            )
        )
    return tuple(history)


@dataclass(frozen=True)
class Details:
    row: Row
    properties: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: DecodedBody
    # The body decoded (a Celery task, a pickle read without unpickling, msgpack, ...), shown
    # next to the raw body; None when no decoder applies.
    decoded: Decoded | None
    decoded_tokens: tuple[Token, ...]  # `decoded.text` coloured, when it is JSON
    x_death: tuple[XDeath, ...]
    routing_keys: tuple[str, ...]
    source: str
    connection: str
    channel: str
    user: str


def build_details(event: Mapping[str, Any]) -> Details:
    properties = _mapping(event.get("properties"))
    headers = _mapping(event.get("headers"))
    ordered = [name for name in PROPERTY_ORDER if name in properties]
    ordered += sorted(name for name in properties if name not in PROPERTY_ORDER)
    decoded = decode_event(event)
    return Details(
        row=build_row(event),
        properties=tuple(
            (str(name), show_value(properties[name]))
            for name in ordered
            if properties[name] is not None
        ),
        headers=tuple((str(name), show_value(value)) for name, value in sorted(headers.items())),
        body=_withheld(event)
        if decoded is not None and decoded.masked
        else decode_body(event.get("body")),
        decoded=decoded,
        decoded_tokens=_decoded_tokens(decoded),
        x_death=x_death_history(headers),
        routing_keys=_str_list(event.get("routing_keys")),
        source=_text(event.get("source")),
        connection=_text(event.get("connection")),
        channel=_text(event.get("channel")),
        user=_text(event.get("user")),
    )


def _withheld(event: Mapping[str, Any]) -> DecodedBody:
    """The raw body of an event whose decoded form was masked: its bytes hold the values."""
    size = _mapping(event.get("body")).get("size")
    return DecodedBody(
        kind="text",
        size=size if isinstance(size, int) else 0,
        truncated=False,
        text=MASKED,
        note=WITHHELD_BODY_NOTE,
    )


def _decoded_tokens(decoded: Decoded | None) -> tuple[Token, ...]:
    if decoded is None or not decoded.text_is_json:
        return ()
    tokens = json_tokens(decoded.text)  # a lexer: a text cut short still colours
    return tokens if len(tokens) <= MAX_JSON_TOKENS else ()
