"""Dead-lettered messages grouped by reason and origin: pure functions, tables of tests.

RabbitMQ adds `x-death` to a message each time it is dead-lettered: a list of tables,
newest first, each with `reason` (`rejected`, `expired`, `maxlen`, `delivery_limit`),
`queue` (where it died), `exchange` and `routing-keys` (what it had been published to),
`count` and `time`. The origin of a message is its first entry: the queue it last died in,
and the exchange and keys that had brought it there, which is where "move back" sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flows.tap.events import json_safe

SAMPLE_IDS = 5


@dataclass(frozen=True)
class Origin:
    """Why and from where a message was (last) dead-lettered."""

    reason: str
    queue: str
    exchange: str
    routing_keys: tuple[str, ...]

    @property
    def routing_key(self) -> str:
        """The key to publish it back with (the others came from CC headers, which it keeps)."""
        return self.routing_keys[0] if self.routing_keys else ""


def _text(value: Any) -> str:
    safe = json_safe(value)
    return safe if isinstance(safe, str) else ("" if safe is None else str(safe))


def origin_of(headers: Mapping[str, Any] | None) -> Origin | None:
    """The first `x-death` entry of a message's headers, or None for a message without one."""
    entries = (headers or {}).get("x-death")
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes) or not entries:
        return None
    first = entries[0]
    if not isinstance(first, Mapping):
        return None
    keys = first.get("routing-keys")
    routing_keys = (
        tuple(_text(key) for key in keys)
        if isinstance(keys, Sequence) and not isinstance(keys, str | bytes)
        else ()
    )
    return Origin(
        reason=_text(first.get("reason")),
        queue=_text(first.get("queue")),
        exchange=_text(first.get("exchange")),
        routing_keys=routing_keys,
    )


def death_count(headers: Mapping[str, Any] | None) -> int:
    """How many times the message died in its origin queue for its reason (first entry)."""
    entries = (headers or {}).get("x-death")
    if isinstance(entries, Sequence) and entries and isinstance(entries[0], Mapping):
        count = entries[0].get("count")
        if isinstance(count, int) and not isinstance(count, bool):
            return count
    return 1


@dataclass(frozen=True)
class Letter:
    """One message seen in a dead-letter queue."""

    position: int  # 0 = the head of the queue when it was read
    origin: Origin | None
    deaths: int
    message_id: str | None
    size: int


@dataclass(frozen=True)
class Selection:
    """Which messages a move takes: those of one reason and origin queue (None: any)."""

    reason: str | None = None
    queue: str | None = None

    def matches(self, origin: Origin | None) -> bool:
        if self.reason is None and self.queue is None:
            return True
        if origin is None:
            return False
        return (self.reason is None or origin.reason == self.reason) and (
            self.queue is None or origin.queue == self.queue
        )

    def describe(self) -> str:
        if self.reason is None and self.queue is None:
            return "every message"
        parts = []
        if self.reason is not None:
            parts.append(self.reason)
        if self.queue is not None:
            parts.append(f"from queue {self.queue!r}")
        return "messages " + " ".join(parts)


@dataclass
class Group:
    """Messages of one reason and origin."""

    origin: Origin | None
    messages: int = 0
    deaths: int = 0
    message_ids: list[str] = field(default_factory=list)

    @property
    def selection(self) -> Selection | None:
        """The selection that moves this group (None: messages without `x-death`)."""
        if self.origin is None:
            return None
        return Selection(reason=self.origin.reason, queue=self.origin.queue)


def group_letters(letters: Iterable[Letter]) -> list[Group]:
    """Groups by (reason, queue, exchange, routing keys), largest first, then by name."""
    groups: dict[Origin | None, Group] = {}
    for letter in letters:
        group = groups.setdefault(letter.origin, Group(origin=letter.origin))
        group.messages += 1
        group.deaths += letter.deaths
        if letter.message_id and len(group.message_ids) < SAMPLE_IDS:
            group.message_ids.append(letter.message_id)
    return sorted(
        groups.values(),
        key=lambda g: (
            -g.messages,
            g.origin is None,
            (g.origin.reason, g.origin.queue) if g.origin else ("", ""),
        ),
    )
