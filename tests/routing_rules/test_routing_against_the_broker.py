"""The dry-run is proven against RabbitMQ itself.

Each test declares a randomised topology in its own scratch vhost (topic patterns with
`#`, `*` and empty words; headers bindings in all four x-match modes; exchange-to-exchange
chains and cycles; alternate exchanges, chained and looping; internal exchanges; the
default exchange), publishes a few hundred messages with publisher confirms, takes every
message back out of the test's own queues, and compares where each one really landed
with what `route()` predicted from the topology read through the management API.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pika
import pytest

from flows.broker.amqp import open_blocking_connection
from flows.routing_rules.dry_run import route
from flows.topology.reading import load_topology

TOPIC_WORDS = ["a", "b", "", "*", "#"]
KEY_WORDS = ["a", "b", "", "c"]
HEADER_NAMES = ["h1", "h2", "x-h"]
# pika cannot send floats; ints travel as 32- or 64-bit, which the broker compares by value.
HEADER_VALUES: list[Any] = ["1", 1, 2**40, True, "yes", ["l", 1]]
MESSAGES_PER_TOPOLOGY = 300


@dataclass
class Plan:
    exchanges: dict[str, tuple[str, dict[str, Any], bool]]  # name -> (type, arguments, internal)
    queues: list[str]
    bindings: list[tuple[str, str, str, str, dict[str, Any]]]  # kind, source, dest, key, args
    messages: list[tuple[str, str, dict[str, Any] | None]]  # exchange, routing key, headers


def random_key(rng: random.Random, words: list[str]) -> str:
    return ".".join(rng.choice(words) for _ in range(rng.randint(0, 4)))


def random_headers(
    rng: random.Random, *, least: int = 0, most: int = len(HEADER_NAMES)
) -> dict[str, Any]:
    names = rng.sample(HEADER_NAMES, rng.randint(least, most))
    # Mostly the common values, so that bindings and messages often agree.
    return {name: rng.choice(HEADER_VALUES[:2] * 3 + HEADER_VALUES) for name in names}


def binding_key_for(rng: random.Random, exchange_type: str) -> str:
    if exchange_type == "topic":
        return random_key(rng, TOPIC_WORDS)
    return random_key(rng, KEY_WORDS)


def plan_topology(seed: int) -> Plan:
    rng = random.Random(seed)
    types = ["topic", "topic", "topic", "direct", "direct", "fanout", "headers", "headers"]
    types += [rng.choice(["topic", "headers", "direct", "fanout"]) for _ in range(4)]
    names = [f"x{index}.{kind}" for index, kind in enumerate(types)]
    exchanges: dict[str, tuple[str, dict[str, Any], bool]] = {}
    for name, kind in zip(names, types, strict=True):
        arguments: dict[str, Any] = {}
        if rng.random() < 0.45:
            # Alternate exchanges: others (chains and loops), itself, or one that is missing.
            arguments["alternate-exchange"] = rng.choice([*names, name, "missing-ae"])
        # Headers exchanges stay publishable: they need many messages to show each mode.
        exchanges[name] = (kind, arguments, kind != "headers" and rng.random() < 0.15)
    queues = [f"q{index}" for index in range(14)]

    bindings: list[tuple[str, str, str, str, dict[str, Any]]] = []
    for name, (kind, _arguments, _internal) in exchanges.items():
        if kind == "headers":
            # Every x-match mode (and none: the default) on every headers exchange.
            for mode in ["all", "any", "all-with-x", "any-with-x", None]:
                arguments: dict[str, Any] = {} if mode is None else {"x-match": mode}
                # "any" with no arguments matches nothing: give it something to match.
                least = 1 if mode in ("any", "any-with-x") else 0
                arguments.update(random_headers(rng, least=least, most=2))
                bindings.append(("queue", name, rng.choice(queues), "", arguments))
        else:
            for _ in range(rng.randint(1, 5)):
                key = binding_key_for(rng, kind)
                bindings.append(("queue", name, rng.choice(queues), key, {}))
        for _ in range(rng.choice([0, 0, 1, 2])):
            # Exchange-to-exchange bindings, cycles and self-bindings included.
            bindings.append(("exchange", name, rng.choice(names), binding_key_for(rng, kind), {}))

    publishable = [name for name, (_k, _a, internal) in exchanges.items() if not internal]
    messages: list[tuple[str, str, dict[str, Any] | None]] = []
    for _ in range(MESSAGES_PER_TOPOLOGY):
        headers: dict[str, Any] | None = random_headers(rng) or None
        if rng.random() < 0.1:
            headers = {**(headers or {}), "CC": [random_key(rng, KEY_WORDS)]}
        if rng.random() < 0.08:
            # The default exchange: a queue's name, or a name no queue has.
            messages.append(("", rng.choice([*queues, "no-such-queue"]), headers))
        else:
            messages.append((rng.choice(publishable), random_key(rng, KEY_WORDS), headers))
    return Plan(exchanges=exchanges, queues=queues, bindings=bindings, messages=messages)


def declare(channel, plan: Plan) -> None:
    for name, (kind, arguments, internal) in plan.exchanges.items():
        channel.exchange_declare(name, kind, arguments=arguments or None, internal=internal)
    for queue in plan.queues:
        channel.queue_declare(queue)
    for kind, source, destination, key, arguments in plan.bindings:
        if kind == "queue":
            channel.queue_bind(destination, source, key, arguments=arguments or None)
        else:
            channel.exchange_bind(destination, source, key, arguments=arguments or None)


def publish_and_collect(channel, plan: Plan) -> dict[int, Counter[str]]:
    """Publish every message with confirms, then take each copy back from the test's queues."""
    channel.confirm_delivery()
    for index, (exchange, key, headers) in enumerate(plan.messages):
        channel.basic_publish(
            exchange, key, str(index).encode(), pika.BasicProperties(headers=headers)
        )
    landed: dict[int, Counter[str]] = {index: Counter() for index in range(len(plan.messages))}
    for queue in plan.queues:
        while True:
            method, _properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            landed[int(body)][queue] += 1
    return landed


@pytest.mark.parametrize("seed", [11, 23, 37])
def test_the_dry_run_predicts_where_the_broker_routes(scratch_vhost: str, seed: int):
    plan = plan_topology(seed)
    connection = open_blocking_connection(vhost=scratch_vhost, purpose="dry-run proof")
    try:
        channel = connection.channel()
        declare(channel, plan)
        topology = load_topology(scratch_vhost)
        landed = publish_and_collect(channel, plan)
    finally:
        connection.close()

    mismatches = []
    routed = 0
    exercised: Counter[str] = Counter()
    for index, (exchange, key, headers) in enumerate(plan.messages):
        actual = landed[index]
        # One copy per queue, however many bindings matched.
        assert all(count == 1 for count in actual.values()), (index, actual)
        predicted = route(topology, exchange=exchange, routing_key=key, headers=headers)
        routed += bool(actual)
        exercised.update(exercised_rules(topology, predicted))
        if set(predicted.queues) != set(actual):
            mismatches.append(
                f"#{index} {exchange!r} {key!r} {headers!r}: broker {sorted(actual)}, "
                f"dry-run {list(predicted.queues)}"
            )
    assert not mismatches, f"seed {seed}:\n" + "\n".join(mismatches[:20])
    # The plan must exercise both outcomes, or the comparison proves little.
    assert 0.2 * len(plan.messages) < routed < len(plan.messages)
    assert set(exercised) >= EVERY_RULE, exercised


EVERY_RULE = {
    "alternate exchange",
    "exchange to exchange",
    "default exchange",
    "topic #",
    "topic *",
    "x-match all",
    "x-match any",
    "x-match all-with-x",
    "x-match any-with-x",
    "unroutable",
}


def exercised_rules(topology, predicted) -> set[str]:
    """Which rules a prediction relied on, so the test can insist that each was proven."""
    rules = set() if predicted.queues else {"unroutable"}
    for chains in predicted.paths.values():
        for chain in chains:
            for hop in chain:
                if hop.kind == "alternate-exchange":
                    rules.add("alternate exchange")
                elif hop.kind == "default-exchange":
                    rules.add("default exchange")
                elif hop.destination_type == "exchange":
                    rules.add("exchange to exchange")
                source = topology.exchange(hop.source)
                if hop.kind != "binding" or source is None:
                    continue
                if source.type == "topic":
                    rules.update(
                        f"topic {w}" for w in ("#", "*") if w in hop.routing_key.split(".")
                    )
                if source.type == "headers":
                    rules.add(f"x-match {hop.arguments.get('x-match', 'all')}")
    return rules
