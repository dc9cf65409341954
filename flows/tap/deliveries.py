"""One delivery to the tap's queue, made into its event or counted as none: the rules the
tap's own consumer (`flows.tap.tap`) and its consumer processes
(`flows.tap.consumer_process`) both follow, in one place.

A delivery is *ignored* when it is no message of the vhost's traffic (in firehose mode, the
tap's own deliveries), *ruled out* when the tap's prefilter (`flows.tap.selection.Prefilter`)
says no viewer wants it, and made into an event otherwise. A firehose publish carrying a
`message_id` is never ruled out: the publish page looks for it (`FirehoseRoute.observed`).
"""

from __future__ import annotations

import time
from collections.abc import Container
from typing import Any, Final

from flows.masking import Mask
from flows.tap.events import TapEvent, firehose_route, from_binding_delivery, from_firehose_delivery
from flows.tap.modes import CaptureMode
from flows.tap.selection import Prefilter

IGNORED: Final = "ignored"
RULED_OUT: Final = "ruled out"


def delivery_event(
    mode: CaptureMode,
    method: Any,
    properties: Any,
    body: bytes,
    *,
    seq: int,
    vhost: str,
    prefilter: Prefilter | None,
    preview_limit: int,
    mask: Mask,
    existing_queues: Container[str] | None = None,
) -> TapEvent | str:
    """The event of a delivery (`method`, `properties`, `body` as pika gives them), or
    `IGNORED` or `RULED_OUT`. JSON bodies stay as published (`pretty=False`): a viewer
    finishes the few events it shows."""
    if mode == "firehose":
        route = firehose_route(method.routing_key, properties.headers)
        if route is None:
            return IGNORED
        if (
            prefilter is not None
            and not route.observed
            and not prefilter.wants(route.kind, route.exchange, route.routing_keys)
        ):
            return RULED_OUT
        event = from_firehose_delivery(
            seq=seq,
            vhost=vhost,
            routing_key=method.routing_key,
            trace_headers=properties.headers,
            body=body,
            received_at=time.time(),
            preview_limit=preview_limit,
            existing_queues=existing_queues,
            pretty=False,
            mask=mask,
            route=route,
        )
        assert event is not None  # its route was read above
        return event
    if prefilter is not None and not prefilter.wants(
        "publish", method.exchange, (method.routing_key,)
    ):
        return RULED_OUT
    return from_binding_delivery(
        seq=seq,
        vhost=vhost,
        exchange=method.exchange,
        routing_key=method.routing_key,
        properties=properties,
        body=body,
        received_at=time.time(),
        preview_limit=preview_limit,
        pretty=False,
        mask=mask,
    )
