"""Tap events for tests, made by the tap's own builders from the raw fields of a delivery.

Never write an event's dict by hand: a change to the real shape (`flows.tap.events.TapEvent`)
must reach the tests that depend on it. To test how code copes with an event the tap never
makes (say, one posted back by a browser), start from one of these and change what matters.

`published` and `delivered` are what the firehose sees; they take the arguments of `_firehose`
(exchange, routing_key, routed_queues, vhost, user, connection, channel, headers, body...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pika

from flows.tap.events import TapEvent, from_binding_delivery, from_firehose_delivery

RECEIVED_AT = 1764197400.25  # 22:50:00.250 UTC


def published(seq: int = 1, **fields: Any) -> TapEvent:
    """A publish the firehose saw, with the queues the broker routed it to (`routed_queues`)."""
    return _firehose(seq, delivered_from=None, **fields)


def delivered(seq: int = 1, *, queue: str = "pizza", **fields: Any) -> TapEvent:
    """A delivery from `queue` to a consumer (name its `connection` and `channel`)."""
    return _firehose(seq, delivered_from=queue, **fields)


def published_via_bindings(
    seq: int = 1,
    *,
    exchange: str = "food",
    routing_key: str = "food.pizza",
    body: bytes = b"{}",
    headers: Mapping[str, Any] | None = None,
    properties: Mapping[str, Any] | None = None,
    vhost: str = "v",
    received_at: float = RECEIVED_AT,
    pretty: bool = True,
) -> TapEvent:
    """A copy of a publish delivered through one of the tap's bindings: its route unknown."""
    return from_binding_delivery(
        seq=seq,
        vhost=vhost,
        exchange=exchange,
        routing_key=routing_key,
        properties=pika.BasicProperties(**dict(properties or {}), headers=dict(headers or {})),
        body=body,
        received_at=received_at,
        pretty=pretty,
    )


def _firehose(
    seq: int,
    *,
    delivered_from: str | None,
    exchange: str = "food",
    routing_key: str = "food.pizza",
    cc: Sequence[str] = (),
    routed_queues: Sequence[str] | None = ("pizza",),
    redelivered: bool = False,
    vhost: str = "v",
    user: str | None = "guest",
    connection: str | None = None,
    channel: int | None = None,
    properties: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    body: bytes = b"{}",
    received_at: float = RECEIVED_AT,
    pretty: bool = True,
) -> TapEvent:
    """`routed_queues=()` is an unroutable publish, None a broker too old to say (before 3.8);
    `cc` are further routing keys (CC and BCC headers), which the firehose lists too."""
    trace: dict[str, Any] = {
        "exchange_name": exchange,
        "routing_keys": [routing_key, *cc],
        # A table of the message's properties, its headers inside.
        "properties": {**(properties or {}), **({"headers": headers} if headers else {})},
    }
    for name, value in (("user", user), ("connection", connection), ("channel", channel)):
        if value is not None:
            trace[name] = value
    if delivered_from is not None:
        trace_key = f"deliver.{delivered_from}"
        trace["redelivered"] = redelivered
    else:
        trace_key = f"publish.{exchange}"
        if routed_queues is not None:
            trace["routed_queues"] = list(routed_queues)
    event = from_firehose_delivery(
        seq=seq,
        vhost=vhost,
        routing_key=trace_key,
        trace_headers=trace,
        body=body,
        received_at=received_at,
        pretty=pretty,
    )
    assert event is not None, f"the firehose ignores {trace_key!r}"
    return event
