"""What a scenario page's composer offers: the scenario's exchanges, its routing keys, and a
first message to send (the scenario's first publisher's first message). Pure, no I/O.

The composer publishes through the publish page's path (`flows.views.publish.publish_form`);
this only fills its fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.demo.messages import MessageContext, encode_body, fill
from flows.demo.scenario import Scenario

DEFAULT_EXCHANGE_LABEL = "(default exchange)"


@dataclass(frozen=True)
class ComposerDefaults:
    exchanges: tuple[tuple[str, str], ...]  # (value, label); "" is the default exchange
    routing_keys: tuple[str, ...]  # the publishers' keys, exact binding keys, queue names
    exchange: str
    routing_key: str
    body: str
    body_encoding: str  # "json" or "text", as the publish form takes it


def composer_defaults(scenario: Scenario) -> ComposerDefaults:
    names = [e.name for e in scenario.exchanges]
    for publisher in scenario.publishers:
        if publisher.exchange not in names:
            names.append(publisher.exchange)
    if "" not in names:
        names.append("")  # the default exchange: straight to a queue, by its name
    exchanges = tuple((name, name or DEFAULT_EXCHANGE_LABEL) for name in names)

    keys: list[str] = []
    for publisher in scenario.publishers:
        keys += [m.routing_key for m in publisher.messages]
    # A binding key with a wildcard is a pattern, not something a message is sent with.
    keys += [b.routing_key for b in scenario.bindings if not {"*", "#"} & set(b.routing_key)]
    keys += [q.name for q in scenario.queues]  # what the default exchange routes on
    routing_keys = tuple(dict.fromkeys(key for key in keys if key))

    first = scenario.publishers[0] if scenario.publishers else None
    message = first.messages[0] if first and first.messages else None
    body, encoding = "", "text"
    if message is not None and message.serializer in ("json", "text"):
        # The first message as its publisher would send it first (placeholders filled).
        body = encode_body(fill(message.body, MessageContext.fresh(1)), message.serializer).decode()
        encoding = message.serializer
    return ComposerDefaults(
        exchanges=exchanges,
        routing_keys=routing_keys,
        exchange=first.exchange if first else (names[0] if names else ""),
        routing_key=message.routing_key if message else "",
        body=body,
        body_encoding=encoding,
    )
