"""One message's timeline, from the recorded tap events that carry its id. Pure: no I/O.

What the broker tells, and what it does not:

- a **publish** (firehose `publish.<exchange>`) names the exchange, routing key, connection,
  user and the queues the broker routed it to (`routed_queues`; empty: unroutable). Through
  bindings only, where it went is unknown;
- a **deliver** (`deliver.<queue>`) names the queue, the consumer's connection and channel,
  and whether it was a redelivery. The firehose does not trace acks: every delivery says
  "ack not observed";
- **dead-lettering** is not traced by the firehose (checked on RabbitMQ 3.10: a rejected
  message's republish to its dead-letter exchange makes no `publish.` trace); the message
  gains an `x-death` header (newest first: reason, queue, count), which grows by one each
  time it is dead-lettered. So a later event whose `x-death` counts more than the ones
  before it shows a dead-lettering happened in between: the step is made from that header,
  with the queue (and the exchange) the later delivery came through. Should a broker trace
  the republish (a publish with a new `x-death` and no client connection), it is shown as
  the broker's republish to the dead-letter exchange;
- an **alternate exchange** that caught a publish is named by no trace header: with the
  vhost's topology (now, not then), the routing dry-run says whether one would have, and
  the step says it is a prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from flows.topology.records import Topology

ACK_NOT_OBSERVED = "ack not observed (the firehose does not trace acks)"


class Step(TypedDict, total=False):
    kind: str  # published, routed, unroutable, delivered, redelivered, dead-lettered
    at: float | None
    text: str
    exchange: str
    routing_key: str
    queues: list[str]
    queue: str
    connection: str | None
    channel: int | None
    user: str | None
    reason: str
    count: int
    note: str
    alternate_exchange: str


def x_death(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The event's `x-death` entries (newest first), or []."""
    headers = event.get("headers") or {}
    entries = headers.get("x-death") if isinstance(headers, Mapping) else None
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, Mapping)]


def death_count(entries: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for entry in entries:
        count = entry.get("count")
        total += count if isinstance(count, int) and not isinstance(count, bool) else 1
    return total


def _dead_lettered(
    entry: Mapping[str, Any], at: float | None, *, inferred: bool, later: Mapping[str, Any]
) -> Step:
    reason = str(entry.get("reason") or "unknown")
    queue = str(entry.get("queue") or "")
    count = entry.get("count")
    text = f"dead-lettered ({reason}) from queue {queue!r}"
    if later.get("kind") == "deliver" and later.get("queue"):
        via = later.get("exchange")
        text += f" into queue {later['queue']!r}" + (f" via exchange {via!r}" if via else "")
    step: Step = {
        "kind": "dead-lettered",
        "at": at,
        "text": text,
        "reason": reason,
        "queue": queue,
        "count": count if isinstance(count, int) else 1,
    }
    if inferred:
        step["note"] = "from the x-death header of a later event"
    return step


def timeline(
    events: Iterable[Mapping[str, Any]], *, topology: Topology | None = None
) -> list[Step]:
    """The steps of one message's life, in the order of `events` (sort them by time).

    `topology`: the vhost's, to predict an alternate exchange that caught a publish.
    """
    steps: list[Step] = []
    deaths_seen = 0
    for event in events:
        at = event.get("received_at")
        at = at if isinstance(at, int | float) else None
        entries = x_death(event)
        deaths = death_count(entries)
        kind = event.get("kind")
        if deaths > deaths_seen and entries:
            # A republish to the DLX is the dead-lettering itself; a delivery (or a
            # publish by a consumer copying the headers) shows one happened before it.
            steps.append(
                _dead_lettered(
                    entries[0],
                    at,
                    inferred=kind != "publish" or not _is_dlx(event),
                    later=event,
                )
            )
        deaths_seen = max(deaths_seen, deaths)
        if kind == "publish":
            steps.extend(
                _publish_steps(
                    event, at, into_dlx=bool(entries) and _is_dlx(event), topology=topology
                )
            )
        elif kind == "deliver":
            steps.append(_deliver_step(event, at))
    return steps


def _is_dlx(event: Mapping[str, Any]) -> bool:
    """A publish that is the broker's dead-letter republish: with an x-death, and by no
    client connection (the broker itself publishes it)."""
    return not event.get("connection") and bool(x_death(event))


def _publish_steps(
    event: Mapping[str, Any], at: float | None, *, into_dlx: bool, topology: Topology | None
) -> list[Step]:
    exchange = str(event.get("exchange") or "")
    routing_key = str(event.get("routing_key") or "")
    shown = repr(exchange) if exchange else "the default exchange"
    published: Step = {
        "kind": "published",
        "at": at,
        "text": (
            f"republished by the broker to dead-letter exchange {shown}"
            if into_dlx
            else f"published to {shown} with routing key {routing_key!r}"
        ),
        "exchange": exchange,
        "routing_key": routing_key,
        "connection": event.get("connection"),
        "channel": event.get("channel"),
        "user": event.get("user"),
    }
    routed = event.get("routed_queues")
    caught = _alternate_exchange(topology, event) if routed or routed is None else None
    if caught is not None:
        published["alternate_exchange"] = caught
        published["note"] = (
            f"caught by alternate exchange {caught!r} (predicted from the topology now: "
            "the broker does not say)"
        )
    if routed is None:
        published.setdefault(
            "note", "where it went is unknown (seen through a binding, not the firehose)"
        )
        return [published]
    if not routed:
        return [published, {"kind": "unroutable", "at": at, "text": "unroutable: no queue got it"}]
    queues = [str(name) for name in routed]
    return [
        published,
        {"kind": "routed", "at": at, "text": f"routed to {', '.join(queues)}", "queues": queues},
    ]


def _deliver_step(event: Mapping[str, Any], at: float | None) -> Step:
    queue = str(event.get("queue") or "")
    redelivered = bool(event.get("redelivered"))
    connection = event.get("connection")
    who = f" to consumer on {connection} (channel {event.get('channel')})" if connection else ""
    return {
        "kind": "redelivered" if redelivered else "delivered",
        "at": at,
        "text": f"{'redelivered' if redelivered else 'delivered'} from queue {queue!r}{who}",
        "queue": queue,
        "connection": connection,
        "channel": event.get("channel"),
        "note": ACK_NOT_OBSERVED,
    }


def _alternate_exchange(topology: Topology | None, event: Mapping[str, Any]) -> str | None:
    if topology is None:
        return None
    from flows.live.prediction import predict_event

    return predict_event(topology, event).alternate_exchange
