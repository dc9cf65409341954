"""Protobuf's wire format without a schema, as `protoc --decode_raw` shows it."""

from __future__ import annotations

import struct

import pytest

from flows.decoding.bounds import Budget, LimitReached
from flows.decoding.protobuf_wire import (
    MAX_DEPTH,
    WireError,
    WireField,
    as_plain,
    as_text,
    read_wire_format,
)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", ""),
        # The examples of protobuf.dev's "Encoding" page.
        (b"\x08\x96\x01", "1: 150"),
        (b"\x12\x07testing", '2: "testing"'),
        (b"\x1a\x03\x08\x96\x01", "3 {\n  1: 150\n}"),
        (key(1, 0) + varint(2**64 - 1), "1: 18446744073709551615"),
        (key(4, 1) + struct.pack("<d", 1.5), "4: 0x3ff8000000000000 (as_double 1.5)"),
        (
            key(5, 5) + struct.pack("<f", -2.0),
            "5: 0xc0000000 (as_float -2.0, as_int32 -1073741824)",
        ),
        (length_delimited(6, b"\xff\x00"), '6: "\\xff\\x00"'),
        (length_delimited(7, b'say "hi"\n'), '7: "say \\"hi\\"\\n"'),
        (length_delimited(8, b""), '8: ""'),
        (key(9, 3) + b"\x08\x01" + key(9, 4), "9 {\n  1: 1\n}"),
        (
            length_delimited(1, length_delimited(2, length_delimited(3, b"\x08\x01"))),
            "1 {\n  2 {\n    3 {\n      1: 1\n    }\n  }\n}",
        ),
    ],
    ids=repr,
)
def test_fields_read_as_decode_raw_shows_them(data, text):
    assert as_text(read_wire_format(data)) == text


def test_json_data_carries_every_reading_of_a_number():
    fields = read_wire_format(key(1, 0) + varint(2**64 - 5) + b"\x1a\x03\x08\x96\x01")
    assert as_plain(fields) == [
        {"field": 1, "wire_type": "varint", "value": 2**64 - 5, "as_int64": -5},
        {
            "field": 3,
            "wire_type": "len",
            "kind": "message",
            "value": [{"field": 1, "wire_type": "varint", "value": 150}],
        },
    ]


def test_bytes_that_are_not_a_message_stay_bytes():
    [field] = read_wire_format(length_delimited(1, b"\x07\xff\xff"))
    assert field == WireField(1, "len", b"\x07\xff\xff")
    assert as_plain((field,))[0]["value"] == {"base64": "B///"}


def test_nesting_deeper_than_the_bound_is_shown_as_bytes():
    data = b"\x08\x01"
    for _ in range(MAX_DEPTH + 3):
        data = length_delimited(1, data)
    text = as_text(read_wire_format(data))
    assert text.count("{") == MAX_DEPTH and '"\\x0a' in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08", "a varint runs past the end at byte 1"),
        (b"\x08" + b"\xff" * 11, "a varint longer than 10 bytes"),
        (b"\x00\x01", "field number 0 at byte 0"),
        (b"\x12\x05ab", "field 2 declares 5 bytes at byte 2"),
        (b"\x09\x00", "field 1 needs 8 bytes at byte 1"),
        (b"\x0e", "wire type 6 (field 1) at byte 0"),
        (key(2, 4), "an end of group 2 at byte 0 closes nothing"),
        (key(2, 3) + b"\x08\x01", "group 2 is not closed"),
    ],
)
def test_what_is_not_the_wire_format_says_where(data, message):
    with pytest.raises(WireError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_wire_format(data)


def test_reading_stops_at_its_time_budget():
    with pytest.raises(LimitReached, match="took longer than"):
        read_wire_format(b"\x08\x01" * 5000, budget=Budget(seconds=0))
