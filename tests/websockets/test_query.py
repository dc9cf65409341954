"""A tap websocket's query string: vhost, mode, filters, rate (tables of cases)."""

from __future__ import annotations

import pytest

from flows.tap.filters import EventFilter, FilterError
from flows.websockets.query import ViewerQuery, parse_max_rate, parse_tap_mode, query_params


@pytest.mark.parametrize(
    ("query_string", "params"),
    [
        (b"", {}),
        (b"vhost=%2F&kind=publish", {"vhost": "/", "kind": "publish"}),
        (b"kind=publish&kind=deliver", {"kind": "deliver"}),  # the last value wins
        (b"body=", {"body": ""}),
        (b"exchange=caf%C3%A9", {"exchange": "café"}),
        (b"exchange=%FF", {"exchange": "\ufffd"}),
    ],
)
def test_query_params(query_string: bytes, params: dict[str, str]) -> None:
    assert query_params({"query_string": query_string}) == params


@pytest.mark.parametrize(
    ("raw", "mode"),
    [(None, "auto"), ("", "auto"), ("auto", "auto"), ("bindings", "bindings"),
     ("firehose", "firehose")],
)  # fmt: skip
def test_parse_tap_mode(raw: str | None, mode: str) -> None:
    assert parse_tap_mode(raw) == mode


@pytest.mark.parametrize("raw", ["Firehose", "both", " auto"])
def test_an_unknown_mode_names_the_mode_field(raw: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_tap_mode(raw)
    assert raised.value.field == "mode"
    assert raised.value.message == "must be auto, bindings or firehose"


@pytest.mark.parametrize(("raw", "rate"), [(None, 200), ("", 200), ("1", 1), ("10000", 10000)])
def test_parse_max_rate(raw: str | None, rate: int) -> None:
    assert parse_max_rate(raw, 200) == rate


@pytest.mark.parametrize(("raw", "rate"), [(None, None), ("", None), ("7", 7)])
def test_without_a_default_max_rate_means_every_event(raw: str | None, rate: int | None) -> None:
    assert parse_max_rate(raw) == rate


@pytest.mark.parametrize("raw", ["0", "10001", "-1", "1.5", "many"])
def test_a_bad_max_rate_names_its_field(raw: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_max_rate(raw, 200)
    assert raised.value.field == "max_rate"


def test_a_viewer_query_defaults_to_every_message_of_the_default_vhost() -> None:
    assert ViewerQuery.from_params({}, max_rate=5) == ViewerQuery(
        vhost="/", mode="auto", event_filter=EventFilter(), max_rate=5
    )


def test_a_viewer_query_reads_vhost_mode_and_filters() -> None:
    params = {"vhost": "shop", "mode": "bindings", "routing_key": "order.#", "format": "json"}
    assert ViewerQuery.from_params(params, max_rate=5) == ViewerQuery(
        vhost="shop",
        mode="bindings",
        event_filter=EventFilter(routing_key="order.#"),
        max_rate=5,
    )


@pytest.mark.parametrize(("params", "field"), [({"mode": "x"}, "mode"), ({"kind": "x"}, "kind")])
def test_a_viewer_query_names_the_parameter_at_fault(params: dict[str, str], field: str) -> None:
    with pytest.raises(FilterError) as raised:
        ViewerQuery.from_params(params, max_rate=5)
    assert raised.value.field == field
