"""Viewer filters: parsing from URL parameters, round trip, and matching (tables of cases)."""

from __future__ import annotations

from typing import Any

import pytest

from flows.tap.events import TapEvent
from flows.tap.filters import EventFilter, FilterError
from tests.support.tap_events import delivered, published, published_via_bindings


def event(**fields: Any) -> TapEvent:
    """A publish routed to billing and audit, with headers and a JSON body to filter on."""
    return published(
        **{
            "exchange": "orders",
            "routing_key": "order.eu.created",
            "routed_queues": ["billing", "audit"],
            "headers": {"tenant": "acme", "retries": 3, "urgent": True},
            "body": b'{"Total": 42, "note": "Error in line"}',
            **fields,
        }
    )


MATCH_CASES = [
    ({}, event(), True),
    ({"exchange": "orders"}, event(), True),
    ({"exchange": "order"}, event(), False),
    ({"exchange": "amq.default"}, event(exchange=""), True),
    ({"exchange": "amq.default"}, event(), False),
    ({"routing_key": "order.*.created"}, event(), True),
    ({"routing_key": "order.#"}, event(), True),
    ({"routing_key": "#"}, event(routing_key=""), True),
    ({"routing_key": "order.*"}, event(), False),
    ({"routing_key": "cc.key"}, event(cc=["cc.key"]), True),
    # An event without the list of keys is matched on its routing key.
    ({"routing_key": "order.eu.created"}, {**event(), "routing_keys": []}, True),
    ({"queue": "audit"}, event(), True),
    ({"queue": "shipping"}, event(), False),
    ({"queue": "work"}, delivered(queue="work"), True),
    ({"queue": "work"}, event(routed_queues=None), False),
    ({"header": "tenant=acme"}, event(), True),
    ({"header": "tenant=ACME"}, event(), False),
    ({"header": "tenant"}, event(), True),
    ({"header": "missing"}, event(), False),
    ({"header": "retries=3"}, event(), True),
    ({"header": "urgent=true"}, event(), True),
    ({"header": "urgent=True"}, event(), True),
    ({"header": "tenant=acme"}, event(headers=None), False),
    ({"header": "tenant=acme"}, {**event(), "headers": None}, False),
    ({"body": "error in"}, event(), True),
    ({"body": 'total": 42'}, event(), True),
    ({"body": "absent"}, event(), False),
    ({"body": "x"}, {**event(), "body": None}, False),
    ({"kind": "publish"}, event(), True),
    ({"kind": "deliver"}, event(), False),
    ({"unroutable": "1"}, event(routed_queues=[]), True),
    ({"unroutable": "1"}, event(), False),
    # Bindings mode cannot know: unknown is not unroutable.
    ({"unroutable": "1"}, published_via_bindings(), False),
    ({"unroutable": "1"}, event(routed_queues=None), False),
    ({"unroutable": "0"}, event(), True),
    ({"exchange": "orders", "kind": "publish", "queue": "billing"}, event(), True),
    ({"exchange": "orders", "kind": "deliver"}, event(), False),
    (
        {"exchange": "<script>", "routing_key": "a/b%2F<c>"},
        event(exchange="<script>", routing_key="a/b%2F<c>"),
        True,
    ),
]


@pytest.mark.parametrize(("params", "candidate", "expected"), MATCH_CASES)
def test_filter_matches(params: dict[str, str], candidate: TapEvent, expected: bool) -> None:
    assert EventFilter.from_params(params).matches(candidate) is expected


ERROR_CASES = [
    ({"kind": "both"}, "kind"),
    ({"unroutable": "maybe"}, "unroutable"),
    ({"header": "=value"}, "header"),
    ({"routing_key": "a" * 256}, "routing_key"),
    ({"queue": "q" * 1001}, "queue"),
    ({"body": "b" * 1001}, "body"),
]


@pytest.mark.parametrize(("params", "field"), ERROR_CASES)
def test_bad_parameters_name_their_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(FilterError) as raised:
        EventFilter.from_params(params)
    assert raised.value.field == field
    assert raised.value.message


ROUND_TRIP_CASES = [
    {},
    {"exchange": "amq.default"},
    {"exchange": "orders", "routing_key": "a.#", "queue": "q", "header": "k=v=w"},
    {"header": "present", "body": " spaced ", "kind": "deliver", "unroutable": "1"},
]


@pytest.mark.parametrize("params", ROUND_TRIP_CASES)
def test_params_round_trip(params: dict[str, str]) -> None:
    parsed = EventFilter.from_params(params)
    assert parsed.to_params() == params
    assert EventFilter.from_params(parsed.to_params()) == parsed


@pytest.mark.parametrize(
    ("params", "empty"),
    [
        ({}, True),
        ({"vhost": "/", "format": "json", "exchange": " "}, True),
        ({"kind": "publish"}, False),
    ],
)
def test_is_empty(params: dict[str, str], empty: bool) -> None:
    assert EventFilter.from_params(params).is_empty is empty
