"""RabbitMQ's matching rules as pure functions: does this binding take this message, and why.

- direct: the binding key equals a routing key; fanout: every binding;
- topic: words split on `.`, `*` is exactly one word, `#` zero or more; the empty key is
  zero words; `a..b` has an empty middle word;
- headers: `x-match` all (the default), any, all-with-x, any-with-x; `x-` arguments are
  ignored except in the `-with-x` modes; values compare like Erlang's `==` (1 equals 1.0,
  `true` is not 1, "1" is not 1);
- the delayed-message plugin's exchanges route like the type they delegate to.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from flows.topology.records import Binding

X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")
SIMULATED_TYPES = ("direct", "fanout", "topic", "headers")


def topic_words(key: str) -> list[str]:
    """Split a routing key or binding pattern into words; the empty key has none."""
    return [] if key == "" else key.split(".")


def topic_matches(pattern: str, routing_key: str) -> bool:
    """Whether a topic binding `pattern` matches `routing_key`.

    `*` matches exactly one word (possibly empty), `#` zero or more words. A `*` or `#`
    that is only part of a word is an ordinary character.
    """
    pattern_words = topic_words(pattern)
    end = len(pattern_words)

    def closure(positions: set[int]) -> set[int]:
        # A `#` may match zero words: stepping over it costs nothing.
        stack = list(positions)
        while stack:
            position = stack.pop()
            if position < end and pattern_words[position] == "#" and position + 1 not in positions:
                positions.add(position + 1)
                stack.append(position + 1)
        return positions

    positions = closure({0})
    for word in topic_words(routing_key):
        advanced: set[int] = set()
        for position in positions:
            if position == end:
                continue
            wanted = pattern_words[position]
            if wanted == "#":
                advanced.add(position)
            elif wanted == "*" or wanted == word:
                advanced.add(position + 1)
        if not advanced:
            return False
        positions = closure(advanced)
    return end in positions


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def amqp_values_equal(left: Any, right: Any) -> bool:
    """Equality as the broker compares header values (Erlang's `==` on decoded values).

    Numbers compare by value whatever their width or type (1 == 1.0); booleans are not
    numbers; strings never equal numbers.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return not (isinstance(left, float) and math.isnan(left)) and left == right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, Sequence) and isinstance(right, Sequence):
        if isinstance(left, str | bytes) or isinstance(right, str | bytes):
            return left == right
        return len(left) == len(right) and all(
            amqp_values_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(
            amqp_values_equal(left[key], right[key]) for key in left
        )
    return left == right


def x_match_mode(binding_arguments: Mapping[str, Any]) -> str:
    """The binding's `x-match`; anything else (or nothing) means `all`, as in the broker."""
    mode = binding_arguments.get("x-match")
    return mode if mode in X_MATCH_MODES else "all"


def header_pattern(binding_arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a headers binding compares with the message's headers."""
    with_x = x_match_mode(binding_arguments).endswith("-with-x")
    return {
        key: value
        for key, value in binding_arguments.items()
        if key != "x-match" and (with_x or not key.startswith("x-"))
    }


def show(value: Any) -> str:
    """A value as it reads in an explanation: JSON, so strings show their quotes."""
    return json.dumps(value, ensure_ascii=False, default=str)


def explain_headers_match(
    binding_arguments: Mapping[str, Any], message_headers: Mapping[str, Any] | None
) -> tuple[bool, str]:
    """Whether a headers binding matches, and a sentence saying why (not)."""
    headers = message_headers or {}
    mode = x_match_mode(binding_arguments)
    pattern = header_pattern(binding_arguments)
    wants_all = mode.startswith("all")

    def compare(key: str, wanted: Any) -> str | None:
        """None if the header satisfies the argument, else what is wrong."""
        if key not in headers:
            return f"header {show(key)} is missing"
        # An argument without a value (AMQP void) asks only for the header's presence.
        if wanted is None or amqp_values_equal(wanted, headers[key]):
            return None
        return f"header {show(key)} is {show(headers[key])}, the binding wants {show(wanted)}"

    if not pattern:
        if wants_all:
            return True, f"x-match {mode} with no header arguments matches every message"
        return False, f"x-match {mode} with no header arguments matches no message"
    problems = {key: compare(key, wanted) for key, wanted in pattern.items()}
    failed = [problem for problem in problems.values() if problem is not None]
    if wants_all:
        if failed:
            return False, f"x-match {mode}: " + "; ".join(failed)
        return True, f"x-match {mode}: every header argument matched"
    matched = [key for key, problem in problems.items() if problem is None]
    if matched:
        return True, f"x-match {mode}: header {show(matched[0])} matched"
    return False, f"x-match {mode}: no header argument matched (" + "; ".join(failed) + ")"


def headers_match(
    binding_arguments: Mapping[str, Any], message_headers: Mapping[str, Any] | None
) -> bool:
    """Whether a headers-exchange binding with these arguments matches these headers."""
    return explain_headers_match(binding_arguments, message_headers)[0]


def routing_type(exchange_type: str, arguments: Mapping[str, Any]) -> str:
    """How an exchange of this type routes: the delayed-message plugin's type delegates to
    the type in its `x-delayed-type` argument (without one, it stays itself: not simulated)."""
    if exchange_type == "x-delayed-message":
        delegated = arguments.get("x-delayed-type")
        return delegated if isinstance(delegated, str) and delegated else exchange_type
    return exchange_type


def explain_binding_match(
    exchange_type: str,
    binding: Binding,
    *,
    routing_keys: Sequence[str],
    headers: Mapping[str, Any] | None,
) -> tuple[bool, str]:
    """Whether one binding of an exchange of this type matches the message, and why (not)."""
    shown_keys = " or ".join(show(key) for key in routing_keys)
    if exchange_type == "fanout":
        return True, "fanout: every binding matches"
    if exchange_type == "direct":
        if binding.routing_key in routing_keys:
            return True, f"binding key {show(binding.routing_key)} equals the routing key"
        return (
            False,
            f"binding key {show(binding.routing_key)} is not the routing key {shown_keys}",
        )
    if exchange_type == "topic":
        for key in routing_keys:
            if topic_matches(binding.routing_key, key):
                return True, f"pattern {show(binding.routing_key)} matches {show(key)}"
        return False, f"pattern {show(binding.routing_key)} does not match {shown_keys}"
    if exchange_type == "headers":
        return explain_headers_match(binding.arguments, headers)
    return False, f"not evaluated: the dry-run does not simulate {exchange_type} exchanges"


__all__ = [
    "SIMULATED_TYPES",
    "amqp_values_equal",
    "explain_binding_match",
    "explain_headers_match",
    "header_pattern",
    "headers_match",
    "routing_type",
    "show",
    "topic_matches",
    "topic_words",
    "x_match_mode",
]
