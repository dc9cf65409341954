"""Which bindings the bindings-mode tap plans for each exchange type (tables)."""

from __future__ import annotations

import pytest

from flows.tap.coverage import TapBinding, firehose_coverage, plan_bindings

TAP_Q = "flows-dashboard.tap.abc"


def ex(name: str, kind: str, **arguments) -> dict:
    return {"name": name, "type": kind, "arguments": arguments}


def b(source: str, key: str, destination: str = "q") -> dict:
    return {"source": source, "destination": destination, "destination_type": "queue",
            "routing_key": key, "arguments": {}}  # fmt: skip


@pytest.mark.parametrize(
    ("exchanges", "bindings", "expected"),
    [
        ([ex("t", "topic")], [], {TapBinding("t", "#")}),
        ([ex("f", "fanout")], [], {TapBinding("f", "")}),
        ([ex("h", "headers")], [], {TapBinding("h", "")}),
        ([ex("d", "direct")], [b("d", "k1"), b("d", "k2"), b("d", "k1", "q2")],
         {TapBinding("d", "k1"), TapBinding("d", "k2")}),
        ([ex("d", "direct")], [], set()),
        # Our own bindings (and another dashboard's) are not the user's keys.
        ([ex("d", "direct")], [b("d", "mine", TAP_Q)], set()),
        ([ex("", "direct"), ex("amq.rabbitmq.trace", "topic")], [b("", "q")], set()),
        ([ex("dl", "x-delayed-message", **{"x-delayed-type": "topic"})], [],
         {TapBinding("dl", "#")}),
        ([ex("c", "x-consistent-hash")], [], set()),
    ],
)  # fmt: skip
def test_planned_bindings(exchanges, bindings, expected) -> None:
    assert plan_bindings(exchanges, bindings).bindings == expected


def test_coverage_names_what_is_and_is_not_covered() -> None:
    plan = plan_bindings(
        [ex("", "direct"), ex("t", "topic"), ex("d", "direct"), ex("c", "x-consistent-hash")],
        [b("d", "k")],
    )
    coverage = plan.coverage
    assert coverage["exchanges"] == ["d", "t"]
    assert coverage["direct_keys"] == {"d": ["k"]}
    assert coverage["not_covered"] == ["", "c"]
    assert "default exchange" in coverage["not_covered_reasons"][""]
    assert "x-consistent-hash" in coverage["not_covered_reasons"]["c"]
    # The warning names the catch-all exchanges, not the direct ones (unbound keys stay
    # unroutable there, so their alternate exchanges still fire).
    [unroutable] = [w for w in coverage["warnings"] if "otherwise-unroutable" in w]
    assert "'t'" in unroutable
    assert "'d'" not in unroutable


def test_no_unroutable_warning_without_catch_all_bindings() -> None:
    coverage = plan_bindings([ex("d", "direct")], [b("d", "k")]).coverage
    assert not any("unroutable" in w for w in coverage["warnings"])


def test_long_exchange_lists_are_shortened_in_the_warning() -> None:
    coverage = plan_bindings([ex(f"t{i:02}", "topic") for i in range(25)], []).coverage
    assert "and 15 more" in coverage["warnings"][-1]
    assert len(coverage["exchanges"]) == 25


@pytest.mark.parametrize(("was_on", "says_it_switches_back"), [(False, True), (True, False)])
def test_firehose_covers_every_exchange(was_on: bool, says_it_switches_back: bool) -> None:
    coverage = firehose_coverage(["", "x", "amq.rabbitmq.trace"], tracing_was_on=was_on)
    assert coverage["exchanges"] == ["", "x"]
    assert coverage["not_covered"] == []
    assert any("switches it off again" in w for w in coverage["warnings"]) is says_it_switches_back


@pytest.mark.parametrize(("nodes", "warns"), [(1, False), (2, True), (3, True)])
def test_firehose_in_a_cluster_says_tracing_is_per_node(nodes: int, warns: bool) -> None:
    coverage = firehose_coverage(["x"], tracing_was_on=True, cluster_nodes=nodes)
    per_node = [w for w in coverage["warnings"] if "switched on per node" in w]
    assert bool(per_node) is warns
    if warns:
        assert per_node[0].startswith(f"This broker is a cluster of {nodes} nodes")
