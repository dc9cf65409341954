"""Tap events for tests, made by the tap's own builders from the raw fields of a delivery.

Never write an event's dict by hand: a change to the real shape (`flows.tap.events.TapEvent`)
must reach the tests that depend on it. To test how code copes with an event the tap never
makes (say, one posted back by a browser), start from one of these and change what matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pika

from flows.tap.events import TapEvent, from_binding_delivery, from_firehose_delivery

RECEIVED_AT = 1764197400.25  # 22:50:00.250 UTC


def _trace_properties(
    properties: Mapping[str, Any] | None, headers: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The firehose's `properties` header: a table of the properties, headers inside."""
    table = dict(properties or {})
    if headers:
        table["headers"] = dict(headers)
    return table


def published(
    seq: int = 1,
    *,
    vhost: str = "v",
    exchange: str = "food",
    routing_key: str = "food.pizza",
    cc: Sequence[str] = (),
    routed_queues: Sequence[str] | None = ("pizza",),
    user: str | None = "guest",
    connection: str | None = None,
    channel: int | None = None,
    properties: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    body: bytes = b"{}",
    received_at: float = RECEIVED_AT,
    pretty: bool = True,
) -> TapEvent:
    """A publish the firehose saw, with the queues the broker routed it to.

    `routed_queues=()` is an unroutable message; None a broker too old to say (before 3.8).
    `cc` are further routing keys (CC and BCC headers), which the firehose lists too.
    """
    trace: dict[str, Any] = {
        "exchange_name": exchange,
        "routing_keys": [routing_key, *cc],
        "properties": _trace_properties(properties, headers),
    }
    if routed_queues is not None:
        trace["routed_queues"] = list(routed_queues)
    return _firehose(
        f"publish.{exchange}",
        trace,
        seq=seq,
        vhost=vhost,
        user=user,
        connection=connection,
        channel=channel,
        body=body,
        received_at=received_at,
        pretty=pretty,
    )


def delivered(
    seq: int = 1,
    *,
    queue: str = "pizza",
    vhost: str = "v",
    exchange: str = "food",
    routing_key: str = "food.pizza",
    redelivered: bool = False,
    user: str | None = "guest",
    connection: str | None = None,
    channel: int | None = None,
    properties: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    body: bytes = b"{}",
    received_at: float = RECEIVED_AT,
    pretty: bool = True,
) -> TapEvent:
    """A delivery from `queue` to the consumer on `connection`, `channel`, seen by the firehose."""
    trace: dict[str, Any] = {
        "exchange_name": exchange,
        "routing_keys": [routing_key],
        "properties": _trace_properties(properties, headers),
        "redelivered": redelivered,
    }
    return _firehose(
        f"deliver.{queue}",
        trace,
        seq=seq,
        vhost=vhost,
        user=user,
        connection=connection,
        channel=channel,
        body=body,
        received_at=received_at,
        pretty=pretty,
    )


def published_via_bindings(
    seq: int = 1,
    *,
    vhost: str = "v",
    exchange: str = "food",
    routing_key: str = "food.pizza",
    properties: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    body: bytes = b"{}",
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
    routing_key: str,
    trace: dict[str, Any],
    *,
    seq: int,
    vhost: str,
    user: str | None,
    connection: str | None,
    channel: int | None,
    body: bytes,
    received_at: float,
    pretty: bool,
) -> TapEvent:
    for name, value in (("user", user), ("connection", connection), ("channel", channel)):
        if value is not None:
            trace[name] = value
    event = from_firehose_delivery(
        seq=seq,
        vhost=vhost,
        routing_key=routing_key,
        trace_headers=trace,
        body=body,
        received_at=received_at,
        pretty=pretty,
    )
    assert event is not None, f"the firehose ignores {routing_key!r}"
    return event
