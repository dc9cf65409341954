"""The routing dry-run's rules, as tables of the documented edge cases (no broker here).

`test_routing_against_the_broker.py` checks the same rules against RabbitMQ itself.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.routing_rules.dry_run import PublishRefused, UnknownExchange, route, routing_keys_of
from flows.routing_rules.matching import (
    amqp_values_equal,
    explain_headers_match,
    headers_match,
    topic_matches,
)
from flows.topology.parsing import build_topology
from flows.topology.records import Topology

# --- topic ----------------------------------------------------------------------------------------

TOPIC_CASES = [
    # (pattern, routing key, matches)
    ("#", "", True),  # the empty key is zero words: # matches it
    ("*", "", False),  # ... and * does not
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
    ("#", "a", True),
    ("#", "a.b.c", True),
    ("*", "a", True),
    ("*", "a.b", False),
    ("a.*", "a.", True),  # a trailing empty word is still a word
    ("a.*", "a", False),
    ("*.*", ".", True),  # two empty words
    (".", "", False),
    ("a.*.b", "a..b", True),  # * matches the empty middle word
    ("a..b", "a..b", True),
    ("a.b", "a..b", False),
    ("a.#.b", "a.b", True),  # # matches zero words in the middle
    ("a.#.b", "a.x.y.b", True),
    ("a.#.b", "a.b.c", False),
    ("#.b", "b", True),
    ("a.#", "a", True),
    ("a.#", "b", False),
    ("#.#", "", True),
    ("#.*", "", False),
    ("#.*", "a", True),
    ("*.#", "a", True),
    ("*.#", "", False),
    ("a.*.#.c", "a.b.c", True),
    ("a.*.#.c", "a.c", False),
    ("#.#.b.#", "x.b", True),
    ("a.b", "a.b.", False),
    ("a*", "ab", False),  # wildcards only as whole words
    ("a*", "a*", True),
    ("a.#b", "a.xb", False),
    ("food.*", "food.pizza", True),
    ("*.icecream", "food.icecream", True),
    ("*.icecream", "icecream", False),
    ("ünï.*", "ünï.çødé", True),
]


@pytest.mark.parametrize(("pattern", "routing_key", "matches"), TOPIC_CASES)
def test_topic_matching(pattern, routing_key, matches):
    assert topic_matches(pattern, routing_key) is matches


def reference_topic_match(pattern: str, key: str) -> bool:
    """A direct recursive reading of the rule, to check the faster matcher against."""
    p = [] if pattern == "" else pattern.split(".")
    k = [] if key == "" else key.split(".")

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(k)
        if p[i] == "#":
            return match(i + 1, j) or (j < len(k) and match(i, j + 1))
        return j < len(k) and (p[i] == "*" or p[i] == k[j]) and match(i + 1, j + 1)

    return match(0, 0)


WORD = st.sampled_from(["a", "b", "", "*", "#"])
KEY_WORD = st.sampled_from(["a", "b", "", "c"])


@given(
    pattern=st.lists(WORD, max_size=6).map(".".join),
    key=st.lists(KEY_WORD, max_size=6).map(".".join),
)
def test_topic_matching_agrees_with_the_recursive_definition(pattern, key):
    assert topic_matches(pattern, key) is reference_topic_match(pattern, key)


@given(key=st.lists(KEY_WORD, max_size=6).map(".".join))
def test_a_key_without_wildcards_matches_itself_and_hash_matches_all(key):
    assert topic_matches(key, key)
    assert topic_matches("#", key)


# --- headers --------------------------------------------------------------------------------------

HEADERS_CASES = [
    # (binding arguments, message headers, matches)
    ({}, {}, True),  # x-match all (the default) with no arguments matches every message
    ({"x-match": "all"}, {"a": 1}, True),
    ({"x-match": "any"}, {"a": 1}, False),  # any with no arguments matches nothing
    ({"x-match": "all-with-x"}, {}, True),
    ({"x-match": "any-with-x"}, {"x-a": 1}, False),
    ({"a": "1"}, {"a": "1"}, True),
    ({"a": "1"}, {"a": "1", "b": "2"}, True),
    ({"a": "1"}, {}, False),
    ({"a": "1"}, None, False),
    ({"a": "1", "b": "2"}, {"a": "1"}, False),
    ({"x-match": "any", "a": "1", "b": "2"}, {"a": "1"}, True),
    ({"x-match": "any", "a": "1", "b": "2"}, {"a": "2", "b": "1"}, False),
    # x- arguments are ignored in all/any ...
    ({"x-match": "all", "x-tenant": "t1"}, {}, True),
    ({"x-match": "any", "x-tenant": "t1", "a": "1"}, {"x-tenant": "t1"}, False),
    # ... and compared in the -with-x modes (x-match itself never is).
    ({"x-match": "all-with-x", "x-tenant": "t1"}, {}, False),
    ({"x-match": "all-with-x", "x-tenant": "t1"}, {"x-tenant": "t1"}, True),
    ({"x-match": "any-with-x", "x-tenant": "t1", "a": "1"}, {"x-tenant": "t1"}, True),
    ({"x-match": "any-with-x", "x-tenant": "t1", "a": "1"}, {"a": "1"}, True),
    ({"x-match": "any-with-x", "x-tenant": "t1"}, {"x-tenant": "t2"}, False),
    # Message headers starting with x- are ordinary data for all/any.
    ({"a": "1"}, {"a": "1", "x-match": "any"}, True),
    # Values: numbers by value, strings are not numbers, booleans are not numbers.
    ({"a": 1}, {"a": 1}, True),
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": 1}, {"a": "1"}, False),
    ({"a": "1"}, {"a": 1}, False),
    ({"a": True}, {"a": True}, True),
    ({"a": True}, {"a": 1}, False),
    ({"a": 1}, {"a": True}, False),
    ({"a": [1, "b"]}, {"a": [1, "b"]}, True),
    ({"a": [1, "b"]}, {"a": ["b", 1]}, False),
    # An argument with no value (AMQP void) asks only for presence.
    ({"a": None}, {"a": "anything"}, True),
    ({"a": None}, {"b": "x"}, False),
    # Unknown x-match values read as all (the broker refuses to create such bindings).
    ({"x-match": "most", "a": "1"}, {"a": "1"}, True),
    # Header names are case-sensitive.
    ({"A": "1"}, {"a": "1"}, False),
]


@pytest.mark.parametrize(("arguments", "headers", "matches"), HEADERS_CASES)
def test_headers_matching(arguments, headers, matches):
    assert headers_match(arguments, headers) is matches


def test_a_failed_headers_match_says_which_header_and_why():
    ok, reason = explain_headers_match({"x-match": "all", "a": "1", "b": "2"}, {"a": "9"})
    assert not ok
    assert 'header "a" is "9", the binding wants "1"' in reason
    assert 'header "b" is missing' in reason
    ok, reason = explain_headers_match({"x-match": "any"}, {"a": "1"})
    assert not ok and "matches no message" in reason


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (0, False, False),
        ("a", "a", True),
        ({"k": 1}, {"k": 1.0}, True),
        ({"k": 1}, {"k": 1, "j": 2}, False),
        (float("nan"), float("nan"), False),
        (None, None, True),
    ],
)
def test_header_value_equality(left, right, equal):
    assert amqp_values_equal(left, right) is equal


# --- routing through a topology --------------------------------------------------------------


def topology(
    exchanges: dict[str, str | tuple[str, dict]],
    queues: list[str],
    bindings: list[tuple],
) -> Topology:
    """exchanges: name -> type or (type, arguments); bindings: (source, dest, key[, args, 'e'])."""
    exchange_items = [{"name": "", "type": "direct"}]
    for name, spec in exchanges.items():
        kind, arguments = (spec, {}) if isinstance(spec, str) else spec
        internal = arguments.pop("internal", False)
        exchange_items.append(
            {"name": name, "type": kind, "arguments": arguments, "internal": internal}
        )
    binding_items = []
    for source, destination, key, *rest in bindings:
        arguments = rest[0] if rest else {}
        kind = "exchange" if len(rest) > 1 and rest[1] == "e" else "queue"
        binding_items.append(
            {
                "source": source,
                "destination": destination,
                "destination_type": kind,
                "routing_key": key,
                "arguments": arguments,
            }
        )
    return build_topology(
        "v",
        exchanges=exchange_items,
        queues=[{"name": name} for name in queues],
        bindings=binding_items,
    )


TALK = topology(
    {"food": "topic", "logins": "fanout", "tasks": "direct", "match": "headers"},
    ["pizza", "icecream", "all-food", "audit", "mail", "belery", "eu"],
    [
        ("food", "pizza", "food.pizza"),
        ("food", "icecream", "*.icecream"),
        ("food", "all-food", "food.*"),
        ("food", "all-food", "#"),
        ("logins", "audit", ""),
        ("logins", "mail", "ignored"),
        ("tasks", "belery", "task"),
        ("match", "eu", "", {"x-match": "any", "region": "eu", "x-tier": "gold"}),
    ],
)


@pytest.mark.parametrize(
    ("exchange", "routing_key", "headers", "queues"),
    [
        ("food", "food.pizza", None, ("all-food", "pizza")),
        ("food", "food.icecream", None, ("all-food", "icecream")),
        ("food", "drink.icecream", None, ("all-food", "icecream")),
        ("food", "", None, ("all-food",)),
        ("logins", "whatever", None, ("audit", "mail")),
        ("tasks", "task", None, ("belery",)),
        ("tasks", "TASK", None, ()),
        ("match", "any", {"region": "eu"}, ("eu",)),
        ("match", "any", {"x-tier": "gold"}, ()),
        ("", "belery", None, ("belery",)),
        ("", "no-such-queue", None, ()),
    ],
)
def test_route_by_exchange_type(exchange, routing_key, headers, queues):
    result = route(TALK, exchange=exchange, routing_key=routing_key, headers=headers)
    assert result.queues == queues
    assert result.unroutable is (queues == ())


def test_a_queue_gets_one_copy_however_many_bindings_match():
    result = route(TALK, exchange="food", routing_key="food.pizza")
    assert result.queues.count("all-food") == 1
    # ... but both bindings that took it there are explained.
    assert sorted(path[-1].routing_key for path in result.paths["all-food"]) == ["#", "food.*"]


def test_bindings_that_did_not_match_say_why():
    result = route(TALK, exchange="food", routing_key="food.pizza")
    [miss] = result.not_matched
    assert miss.binding.destination == "icecream"
    assert miss.reason == 'pattern "*.icecream" does not match "food.pizza"'
    direct = route(TALK, exchange="tasks", routing_key="TASK")
    assert direct.not_matched[0].reason == 'binding key "task" is not the routing key "TASK"'


def test_the_default_exchange_routes_only_to_an_existing_queue():
    routed = route(TALK, exchange="", routing_key="belery")
    assert routed.path("belery")[0].kind == "default-exchange"
    missing = route(TALK, exchange="", routing_key="nope")
    assert missing.unroutable
    assert any('no queue named "nope"' in note for note in missing.notes)
    reply_to = route(TALK, exchange="", routing_key="amq.rabbitmq.reply-to")
    assert reply_to.unroutable and "direct reply-to" in reply_to.notes[0]


def test_an_unknown_exchange_is_an_error_naming_it():
    with pytest.raises(UnknownExchange, match='"nope"'):
        route(TALK, exchange="nope", routing_key="x")
    # amq.default is what the management UI calls "", but AMQP does not know that name.
    with pytest.raises(UnknownExchange):
        route(TALK, exchange="amq.default", routing_key="belery")


def test_publishing_to_an_internal_exchange_is_refused():
    internal = topology({"inner": ("fanout", {"internal": True})}, ["q"], [("inner", "q", "")])
    with pytest.raises(PublishRefused, match="internal"):
        route(internal, exchange="inner", routing_key="")


CHAIN = topology(
    {
        "front": "topic",
        "middle": "direct",
        "back": "fanout",
        "loop-a": "fanout",
        "loop-b": "fanout",
        "inner": ("fanout", {"internal": True}),
    },
    ["q-middle", "q-back", "q-loop"],
    [
        ("front", "middle", "orders.#", {}, "e"),
        ("middle", "back", "orders.eu", {}, "e"),
        ("middle", "q-middle", "orders.us"),
        ("back", "q-back", ""),
        ("front", "loop-a", "loop", {}, "e"),
        ("loop-a", "loop-b", "", {}, "e"),
        ("loop-b", "loop-a", "", {}, "e"),
        ("loop-b", "q-loop", ""),
        ("loop-a", "loop-a", "", {}, "e"),
        ("front", "inner", "inner", {}, "e"),
        ("inner", "q-back", ""),
    ],
)


def test_exchange_to_exchange_chains_carry_the_routing_key():
    result = route(CHAIN, exchange="front", routing_key="orders.eu")
    assert result.queues == ("q-back",)
    assert [(hop.source, hop.destination) for hop in result.path("q-back")] == [
        ("front", "middle"),
        ("middle", "back"),
        ("back", "q-back"),
    ]
    assert route(CHAIN, exchange="front", routing_key="orders.us").queues == ("q-middle",)


def test_cycles_of_exchange_bindings_end():
    result = route(CHAIN, exchange="front", routing_key="loop")
    assert result.queues == ("q-loop",)
    assert result.visited_exchanges == ("front", "loop-a", "loop-b")
    assert any("cycle" in note for note in result.notes)


def test_internal_exchanges_route_what_other_exchanges_forward():
    assert route(CHAIN, exchange="front", routing_key="inner").queues == ("q-back",)


AE = topology(
    {
        "orders": ("direct", {"alternate-exchange": "unrouted"}),
        "unrouted": "fanout",
        "forwarder": ("direct", {"alternate-exchange": "unrouted"}),
        "empty": "fanout",
        "first": ("direct", {"alternate-exchange": "second"}),
        "second": ("direct", {"alternate-exchange": "third"}),
        "third": ("fanout", {"alternate-exchange": "first"}),
        "ping": ("direct", {"alternate-exchange": "pong"}),
        "pong": ("direct", {"alternate-exchange": "ping"}),
        "dangling": ("direct", {"alternate-exchange": "does-not-exist"}),
        "downstream-ae": "direct",
        "has-ae-below": ("direct", {"alternate-exchange": "unrouted"}),
    },
    ["orders.eu", "lost-and-found", "third-q"],
    [
        ("orders", "orders.eu", "eu"),
        ("unrouted", "lost-and-found", ""),
        ("forwarder", "empty", "x", {}, "e"),
        ("third", "third-q", ""),
        ("has-ae-below", "orders", "y", {}, "e"),
    ],
)


def test_the_alternate_exchange_catches_what_no_binding_matched():
    result = route(AE, exchange="orders", routing_key="us")
    assert result.queues == ("lost-and-found",)
    assert result.alternate_exchange == "unrouted"
    assert [hop.kind for hop in result.path("lost-and-found")] == ["alternate-exchange", "binding"]


def test_the_alternate_exchange_is_not_used_when_a_binding_matched():
    result = route(AE, exchange="orders", routing_key="eu")
    assert result.queues == ("orders.eu",)
    assert result.alternate_exchange is None
    assert result.alternate_exchanges_tried == ()


def test_a_matched_exchange_binding_counts_even_if_nothing_downstream_routes():
    # The broker's rule is per exchange: forwarder's binding matched, so its alternate
    # exchange stays unused although the message reaches no queue.
    result = route(AE, exchange="forwarder", routing_key="x")
    assert result.unroutable
    assert result.alternate_exchanges_tried == ()


def test_an_exchange_downstream_uses_its_own_alternate_exchange():
    result = route(AE, exchange="has-ae-below", routing_key="y")
    assert result.queues == ("lost-and-found",)
    assert [hop.destination for hop in result.path("lost-and-found")] == [
        "orders",
        "unrouted",
        "lost-and-found",
    ]


def test_alternate_exchanges_chain():
    result = route(AE, exchange="first", routing_key="k")
    assert result.queues == ("third-q",)
    assert result.alternate_exchanges_tried == ("second", "third")
    assert result.alternate_exchange == "second"


def test_an_alternate_exchange_loop_ends_unroutable():
    result = route(AE, exchange="ping", routing_key="k")
    assert result.unroutable
    assert result.visited_exchanges == ("ping", "pong")
    assert any("already visited" in note for note in result.notes)


def test_a_missing_alternate_exchange_is_noted():
    result = route(AE, exchange="dangling", routing_key="k")
    assert result.unroutable
    assert any('"does-not-exist" of "dangling" does not exist' in note for note in result.notes)


def test_cc_and_bcc_add_routing_keys_and_bcc_is_hidden_from_headers():
    assert routing_keys_of("a", {"CC": ["b", "a"], "BCC": ["c"]}) == ("a", "b", "c")
    result = route(TALK, exchange="tasks", routing_key="nothing", headers={"CC": ["task"]})
    assert result.queues == ("belery",)
    hidden = topology({"h": "headers"}, ["q"], [("h", "q", "", {"BCC": None})])
    assert route(hidden, exchange="h", routing_key="", headers={"BCC": ["x"]}).unroutable
    with pytest.raises(PublishRefused, match="CC header must be a list"):
        route(TALK, exchange="tasks", routing_key="k", headers={"CC": "task"})


def test_unsimulated_exchange_types_make_the_answer_uncertain():
    hashing = topology({"hash": "x-consistent-hash"}, ["q"], [("hash", "q", "1")])
    result = route(hashing, exchange="hash", routing_key="k")
    assert result.uncertain
    assert "does not simulate" in result.not_matched[0].reason


def test_delayed_message_exchanges_route_like_their_delayed_type():
    delayed = topology(
        {"later": ("x-delayed-message", {"x-delayed-type": "topic"})},
        ["q"],
        [("later", "q", "a.*")],
    )
    result = route(delayed, exchange="later", routing_key="a.b")
    assert result.queues == ("q",)
    assert not result.uncertain
