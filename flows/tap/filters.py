"""Viewer filters over tap events, as plain data that travels in a URL.

A filter is applied on the server, before sampling, so the few messages a person cares about
are never sampled away among thousands (see the live view). It is built from query parameters
so that a link reproduces a colleague's view, and it turns back into them for the same reason.

Parameters (all optional; an empty value means "no filter"):

- `exchange`: the exchange name exactly; `amq.default` names the default exchange ("").
- `routing_key`: a topic pattern (`*` one word, `#` zero or more) matched against any of the
  event's routing keys (firehose events carry CC/BCC keys too).
- `queue`: a deliver event's queue, or one of a publish event's routed queues.
- `header`: `key=value` (the header's value in its text or JSON form) or `key` (present).
- `body`: a case-insensitive substring of the body preview.
- `kind`: `publish` or `deliver`.
- `unroutable`: `1` keeps only messages known to be unroutable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flows.parsing import boolean_word
from flows.routing_rules.matching import topic_matches
from flows.topology.records import DEFAULT_EXCHANGE_ALIAS

KINDS = ("publish", "deliver")
MAX_VALUE_LENGTH = 1000


class FilterError(ValueError):
    """A filter parameter that cannot be used; `field` names the parameter for the form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class EventFilter:
    exchange: str | None = None
    routing_key: str | None = None
    queue: str | None = None
    header: tuple[str, str | None] | None = None
    body: str | None = None
    kind: str | None = None
    unroutable: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EventFilter:
        """Build from query parameters; unknown parameters (vhost, format...) are ignored."""

        def text(name: str) -> str | None:
            raw = params.get(name)
            if raw is None:
                return None
            value = str(raw)
            if len(value) > MAX_VALUE_LENGTH:
                raise FilterError(name, f"is longer than {MAX_VALUE_LENGTH} characters")
            # Whitespace around a typed value is never meant; inside a name it may be.
            return value.strip() or None

        exchange = text("exchange")
        if exchange == DEFAULT_EXCHANGE_ALIAS:
            exchange = ""

        routing_key = text("routing_key")
        if routing_key is not None and len(routing_key.encode()) > 255:
            raise FilterError("routing_key", "a routing key pattern is at most 255 bytes")

        header: tuple[str, str | None] | None = None
        header_text = text("header")
        if header_text is not None:
            key, sep, value = header_text.partition("=")
            key = key.strip()
            if not key:
                raise FilterError("header", "write key=value, or key alone to require the header")
            header = (key, value if sep else None)

        kind = text("kind")
        if kind is not None and kind not in KINDS:
            raise FilterError("kind", "must be publish or deliver")

        unroutable_text = text("unroutable")
        unroutable = False if unroutable_text is None else boolean_word(unroutable_text)
        if unroutable is None:
            raise FilterError("unroutable", "must be 1 or 0")

        body = params.get("body")
        if body is not None and len(str(body)) > MAX_VALUE_LENGTH:
            raise FilterError("body", f"is longer than {MAX_VALUE_LENGTH} characters")

        return cls(
            exchange=exchange,
            routing_key=routing_key,
            queue=text("queue"),
            header=header,
            # A body substring keeps its spaces: " error" is a different search than "error".
            body=str(body) if body else None,
            kind=kind,
            unroutable=unroutable,
        )

    @property
    def is_empty(self) -> bool:
        return self == EventFilter()

    def to_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.exchange is not None:
            params["exchange"] = self.exchange or DEFAULT_EXCHANGE_ALIAS
        for name in ("routing_key", "queue", "body", "kind"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.header is not None:
            key, value = self.header
            params["header"] = key if value is None else f"{key}={value}"
        if self.unroutable:
            params["unroutable"] = "1"
        return params

    @property
    def route_only(self) -> bool:
        """It asks only what a delivery's route tells (kind, exchange, routing keys): the tap
        can rule a message out before making an event of it (`flows.tap.selection`)."""
        return (
            self.queue is None
            and self.header is None
            and self.body is None
            and (not self.unroutable)
        )

    def matches_route(self, kind: str, exchange: str, routing_keys: Sequence[str]) -> bool:
        """The kind, exchange and routing-key parts of `matches`, on a delivery's route."""
        if self.kind is not None and kind != self.kind:
            return False
        if self.exchange is not None and exchange != self.exchange:
            return False
        return self.routing_key is None or any(
            topic_matches(self.routing_key, key) for key in routing_keys
        )

    def matches(self, event: Mapping[str, Any]) -> bool:
        if not self.matches_route(
            event.get("kind"),  # type: ignore[arg-type]
            event.get("exchange"),  # type: ignore[arg-type]
            _routing_keys(event) if self.routing_key is not None else (),
        ):
            return False
        if self.unroutable and event.get("unroutable") is not True:
            return False
        if self.queue is not None and self.queue not in _queues(event):
            return False
        if self.header is not None and not _header_matches(event, *self.header):
            return False
        if self.body is not None:
            preview = (event.get("body") or {}).get("preview") or ""
            if self.body.casefold() not in str(preview).casefold():
                return False
        return True


def _routing_keys(event: Mapping[str, Any]) -> list[str]:
    keys = event.get("routing_keys") or []
    if not keys and event.get("routing_key") is not None:
        keys = [event["routing_key"]]
    return [str(key) for key in keys]


def _queues(event: Mapping[str, Any]) -> set[str]:
    queues = set(event.get("routed_queues") or [])
    if event.get("queue") is not None:
        queues.add(event["queue"])
    return queues


def _header_matches(event: Mapping[str, Any], key: str, wanted: str | None) -> bool:
    headers = event.get("headers") or {}
    if key not in headers:
        return False
    if wanted is None:
        return True
    value = headers[key]
    # A header typed in the publish form as an integer or boolean is matched by its text.
    return wanted in {str(value), json.dumps(value, ensure_ascii=False, sort_keys=True)}
