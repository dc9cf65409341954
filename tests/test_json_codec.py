"""orjson with `json` behind it: the same text as `json` writes, whatever orjson refuses."""

from __future__ import annotations

import json
import math

import pytest

from flows import json_codec

VALUES = [
    {"a": [1, 2, {"b": None}], "é": "ü", "x": 1.5, "z": [], "w": {}},
    [[]],
    {"n": -0.0, "f": 0.1, "e": 1e16, "t": True, "no": False},
    {"s": '\u2028 \x00 "q" / \\ \U0001f600'},
    {"big": 2**63 - 1, "neg": -(2**63)},
    {"huge": 2**80},  # beyond orjson's 64 bits
    "plain",
    3,
]


@pytest.mark.parametrize("value", VALUES)
def test_pretty_is_what_json_writes_with_indent_2(value) -> None:
    assert json_codec.pretty(value) == json.dumps(value, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("value", VALUES)
def test_dumps_bytes_reads_back_as_the_value(value) -> None:
    assert json.loads(json_codec.dumps_bytes(value)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("[1, 2.5]", [1, 2.5]),
        ("123456789012345678901234567890", 123456789012345678901234567890),  # not a float
        ("[9223372036854775807, 0.1234567890123456789]", [2**63 - 1, 0.1234567890123456789]),
        ('"\\ud800"', "\ud800"),  # a lone surrogate: json takes it, orjson does not
    ],
)
def test_loads_takes_what_json_takes(text, expected) -> None:
    assert json_codec.loads(text) == expected


def test_loads_takes_nan_as_json_does() -> None:
    assert math.isnan(json_codec.loads("NaN"))


@pytest.mark.parametrize("text", ["{", "{'a': 1}", "", "[1,]", "tru"])
def test_loads_refuses_what_is_not_json_with_a_value_error(text) -> None:
    with pytest.raises(ValueError):
        json_codec.loads(text)


def test_dumps_bytes_escapes_what_utf_8_cannot_carry() -> None:
    assert json_codec.dumps_bytes({"s": "\ud800"}) == b'{"s":"\\ud800"}'
