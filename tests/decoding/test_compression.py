"""Compressed bodies: which declarations count, every method, and the zip-bomb cap."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib

import pytest

from flows.decoding.compression import DecompressionError, compression_of, decompress

TEXT = b'{"task": "add"}' * 20


@pytest.mark.parametrize(
    ("content_encoding", "header", "expected"),
    [
        ("gzip", None, "gzip"),
        ("GZIP ", None, "gzip"),
        ("deflate", None, "deflate"),
        (None, "application/x-gzip", "application/x-gzip"),  # kombu's zlib
        ("utf-8", "zlib", "zlib"),  # Celery's content_encoding and kombu's header
        ("utf-8", None, None),
        ("binary", None, None),
        ("identity", None, None),
        (None, None, None),
        ("br", None, "br"),  # known, and refused as unsupported below
        (None, 7, None),
    ],
)
def test_only_names_of_compression_methods_count(content_encoding, header, expected):
    assert compression_of(content_encoding, header) == expected


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("gzip", gzip.compress(TEXT)),
        ("gzip", zlib.compress(TEXT)),  # the header says which of the two it is
        ("application/x-gzip", zlib.compress(TEXT)),
        ("zlib", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT, wbits=-15)),  # raw deflate, as some send it
        ("bzip2", bz2.compress(TEXT)),
        ("application/x-bz2", bz2.compress(TEXT)),
        ("xz", lzma.compress(TEXT)),
        ("application/x-lzma", lzma.compress(TEXT)),
    ],
)
def test_every_method_decompresses(method, data):
    result = decompress(data, method)
    assert result.data == TEXT
    assert not result.cut and not result.incomplete
    assert result.note == f"{method}: decompressed to {len(TEXT)} bytes"


def test_a_bomb_is_cut_at_the_cap():
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    result = decompress(bomb, "gzip", max_bytes=1000)
    assert len(result.data) == 1000 and result.cut
    assert result.note == "gzip: first 1000 bytes of a larger body decompressed"


@pytest.mark.parametrize("method", ["gzip", "bzip2", "xz"])
def test_a_cut_stream_gives_its_first_part(method):
    compress = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[method]
    data = compress(bytes(range(256)) * 400)
    result = decompress(data[: len(data) // 2], method)
    assert result.incomplete and not result.cut
    assert (bytes(range(256)) * 400).startswith(result.data)


@pytest.mark.parametrize(
    ("method", "data", "message"),
    [
        ("gzip", b"not compressed", "incorrect header check"),
        ("bzip2", b"not compressed", "Invalid data stream"),
        ("xz", b"not compressed", "Input format not supported by decoder"),
        ("br", b"\x0b", "br is not supported here"),
        ("zstd", b"\x28", "zstd is not supported here"),
    ],
)
def test_what_cannot_be_decompressed_says_why(method, data, message):
    with pytest.raises(DecompressionError, match=message):
        decompress(data, method)
