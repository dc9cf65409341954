"""Dead-lettered messages by reason and origin: the first `x-death` entry (tables)."""

from __future__ import annotations

import datetime as dt

import pytest
from pika.compat import long

from flows.dead_letters.grouping import (
    Letter,
    Origin,
    Selection,
    death_count,
    group_letters,
    origin_of,
)
from flows.dead_letters.moving import MoveTarget


def death(reason: str, queue: str, exchange: str = "shop", keys=("order",), count=1) -> dict:
    return {
        "count": long(count),
        "reason": reason,
        "queue": queue,
        "exchange": exchange,
        "routing-keys": list(keys),
        "time": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"x-death": []}, None),
        ({"x-death": "nonsense"}, None),
        ({"x-death": [death("rejected", "orders")]},
         Origin("rejected", "orders", "shop", ("order",))),
        # Newest first: the first entry is where it died last.
        ({"x-death": [death("expired", "orders.delay", keys=("later", "cc")),
                      death("rejected", "orders")]},
         Origin("expired", "orders.delay", "shop", ("later", "cc"))),
        # The broker's values may arrive as bytes.
        ({"x-death": [{"reason": b"maxlen", "queue": b"q", "exchange": b"",
                       "routing-keys": [b"q"]}]},
         Origin("maxlen", "q", "", ("q",))),
    ],
)  # fmt: skip
def test_the_origin_is_the_first_x_death_entry(headers, expected) -> None:
    assert origin_of(headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [(None, 1), ({"x-death": [death("rejected", "q", count=3)]}, 3)],
)
def test_death_count(headers, expected) -> None:
    assert death_count(headers) == expected


def letter(position: int, origin: Origin | None, deaths: int = 1) -> Letter:
    return Letter(
        position=position, origin=origin, deaths=deaths, message_id=f"m{position}", size=1
    )


REJECTED = Origin("rejected", "orders", "shop", ("order",))
EXPIRED = Origin("expired", "orders.delay", "shop", ("later",))


def test_groups_are_counted_largest_first_with_the_undead_last() -> None:
    letters = [
        letter(0, EXPIRED),
        letter(1, REJECTED, deaths=2),
        letter(2, None),
        letter(3, REJECTED),
    ]
    groups = group_letters(letters)
    assert [(g.origin, g.messages, g.deaths, g.message_ids) for g in groups] == [
        (REJECTED, 2, 3, ["m1", "m3"]),
        (EXPIRED, 1, 1, ["m0"]),
        (None, 1, 1, ["m2"]),
    ]
    assert groups[0].selection == Selection(reason="rejected", queue="orders")
    assert groups[2].selection is None


@pytest.mark.parametrize(
    ("selection", "origin", "matches"),
    [
        (Selection(), None, True),
        (Selection(), REJECTED, True),
        (Selection(reason="rejected"), REJECTED, True),
        (Selection(reason="rejected"), EXPIRED, False),
        (Selection(reason="rejected"), None, False),
        (Selection(queue="orders.delay"), EXPIRED, True),
        (Selection(reason="expired", queue="orders"), EXPIRED, False),
    ],
)
def test_selections(selection, origin, matches) -> None:
    assert selection.matches(origin) is matches


@pytest.mark.parametrize(
    ("target", "origin", "expected"),
    [
        (MoveTarget(), REJECTED, ("shop", "order")),
        (MoveTarget(), None, None),
        (MoveTarget(), Origin("rejected", "q", "", ()), ("", "")),
        (MoveTarget("elsewhere", "k"), REJECTED, ("elsewhere", "k")),
        (MoveTarget("", "holding"), None, ("", "holding")),
    ],
)
def test_targets(target, origin, expected) -> None:
    assert target.resolve(origin) == expected
