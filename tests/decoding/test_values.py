"""Decoded values as JSON data and as Python-like text, both bounded."""

from __future__ import annotations

import datetime as dt
import json

import cbor2
import msgpack
import pytest

from flows.decoding.values import Opaque, literal_text, plain


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("é", "é"),
        (1, 1),
        (2**5000, "<integer of 5001 bits>"),
        (float("nan"), "nan"),
        (b"text", "text"),
        (b"\xff\x00", {"base64": "/wA="}),
        ((1, (2,)), [1, [2]]),
        ({3}, [3]),
        (
            {1: "a", (1, 2): "b", b"k": "c", None: "d"},
            {"1": "a", "(1, 2)": "b", "k": "c", "None": "d"},
        ),
        (Opaque("<global os.system>"), "<global os.system>"),
        (dt.datetime(2024, 5, 6, 7, 8, tzinfo=dt.UTC), "2024-05-06T07:08:00+00:00"),
        (msgpack.ExtType(5, b"\x01"), {"msgpack_ext": 5, "base64": "AQ=="}),
        (msgpack.Timestamp(0, 0), "1970-01-01T00:00:00+00:00"),
        (cbor2.CBORTag(999, [1]), {"cbor_tag": 999, "value": [1]}),
        (cbor2.CBORSimpleValue(99), {"cbor_simple": 99}),
    ],
    ids=repr,
)
def test_plain_makes_json_data(value, expected):
    result = plain(value)
    assert result == expected
    json.dumps(result)  # and it is JSON


def test_plain_bounds_depth_and_cycles():
    loop: list = []
    loop.append(loop)
    assert plain(loop, max_depth=3) == [[["<nested too deep>"]]]


def test_plain_bounds_how_many_values_it_shows():
    assert plain(list(range(10)), max_nodes=4) == [0, 1, 2, 3, "<6 more not shown>"]
    assert plain({"a": 1, "b": 2, "c": 3}, max_nodes=1) == {"a": 1, "…": "<2 more not shown>"}


def test_plain_of_an_expanding_structure_stays_small():
    # Each level holds the previous one twice: 2**40 values, if expanded.
    value: list = [1]
    for _ in range(40):
        value = [value, value]
    assert len(json.dumps(plain(value))) < 1_000_000


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ((1,), "(1,)"),
        ((), "()"),
        (set(), "set()"),
        (frozenset(), "frozenset()"),
        (frozenset({1}), "frozenset({1})"),
        ([b"\x00", "s", None, True, 1.5], "[b'\\x00', 's', None, True, 1.5]"),
        ({"f": Opaque("<global os.system>('x')")}, "{'f': <global os.system>('x')}"),
        (2**5000, "<integer of 5001 bits>"),
    ],
    ids=repr,
)
def test_literal_text_writes_python_literals_and_markers_bare(value, text):
    assert literal_text(value) == text


def test_literal_text_breaks_wide_containers_into_lines():
    value = {"args": list(range(30)), "kwargs": {"a": 1}}
    assert literal_text(value, width=40) == (
        "{\n"
        "  'args': [\n" + "".join(f"    {n},\n" for n in range(29)) + "    29\n"
        "  ],\n"
        "  'kwargs': {'a': 1}\n"
        "}"
    )


def test_literal_text_is_cut_at_its_length():
    text = literal_text(list(range(1000)), max_chars=20)
    assert text == "[\n  0,\n  1,\n  2,\n  3…" and len(text) == 21
