"""Float headers survive pika's encoder and decoder once `float_headers.install()` ran."""

from __future__ import annotations

import math

import pika.data
import pytest

from flows.broker import float_headers

float_headers.install()


@pytest.mark.parametrize(
    "table",
    [
        {"f": 1.5},
        {"f": -0.0, "g": 1e300, "h": -2.5e-300},
        {"nested": {"deeper": [1.25, 2, "x", {"z": 0.1}]}},
        {"i": 7, "s": "é", "b": True, "n": None, "l": [1, 2.5]},
    ],
)
def test_tables_with_floats_round_trip(table):
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    decoded, _ = pika.data.decode_table(b"".join(pieces), 0)
    assert decoded == table
    assert type(decoded.get("f", 0.0)) is float


def test_a_single_precision_float_from_another_client_decodes_as_a_float():
    import struct

    encoded = struct.pack(">I", 7) + b"\x01x" + b"f" + struct.pack(">f", 0.5)
    decoded, _ = pika.data.decode_table(encoded, 0)
    assert decoded == {"x": 0.5}


def test_infinity_is_encoded_as_a_double_too():
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, {"x": math.inf})
    assert pika.data.decode_table(b"".join(pieces), 0)[0] == {"x": math.inf}
