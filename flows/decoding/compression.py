"""Compressed bodies: `content_encoding` (gzip, deflate, zlib, ...) or kombu's `compression` header.

kombu compresses the body and names the method in a `compression` header (its
`application/x-gzip` is a zlib stream, whatever the name says); HTTP-minded publishers set
`content_encoding` instead. Decompression is capped at `MAX_DECOMPRESSED_BYTES`: a bomb of a
few KiB would expand to gigabytes, so what is past the cap is cut, and the result says so.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from dataclasses import dataclass
from typing import Literal

from flows.decoding.bounds import MAX_DECOMPRESSED_BYTES

Method = Literal["gzip", "deflate", "bzip2", "xz"]

# Names publishers use, by the method that reads them. gzip and zlib streams tell
# themselves apart by their first bytes, so both go through the same reader.
METHODS: dict[str, Method] = {
    "gzip": "gzip",
    "x-gzip": "gzip",
    "application/gzip": "gzip",
    "application/x-gzip": "gzip",
    "zlib": "gzip",
    "application/zlib": "gzip",
    "deflate": "deflate",
    "bzip2": "bzip2",
    "bzip": "bzip2",
    "x-bzip2": "bzip2",
    "application/x-bz2": "bzip2",
    "xz": "xz",
    "lzma": "xz",
    "application/x-lzma": "xz",
    "application/x-xz": "xz",
}
# Known methods this decoder cannot read (no such module in Python's standard library).
UNSUPPORTED = frozenset(
    {"br", "brotli", "application/x-brotli", "zstd", "zstandard", "application/zstd", "lz4"}
)

GZIP_MAGIC = b"\x1f\x8b"
# zlib.decompressobj: 32 + 15 reads a gzip or a zlib stream, -15 a raw deflate stream.
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


@dataclass(frozen=True)
class Decompressed:
    method: str  # as the message named it
    data: bytes
    cut: bool  # more would have come out than MAX_DECOMPRESSED_BYTES
    incomplete: bool  # the compressed stream ended early (a cut preview, say)

    @property
    def note(self) -> str:
        if self.cut:
            return f"{self.method}: first {len(self.data)} bytes of a larger body decompressed"
        if self.incomplete:
            return f"{self.method}: the compressed body is cut; its first part decompressed"
        return f"{self.method}: decompressed to {len(self.data)} bytes"


class DecompressionError(Exception):
    pass


def compression_of(content_encoding: str | None, compression_header: object) -> str | None:
    """The compression a message declares, lower-cased; None when it declares none.

    `content_encoding` is also where Celery writes `utf-8` or `binary`: only a compression
    method's name counts.
    """
    for declared in (compression_header, content_encoding):
        if isinstance(declared, str):
            name = declared.strip().lower()
            if name in METHODS or name in UNSUPPORTED:
                return name
    return None


def decompress(
    data: bytes, method: str, *, max_bytes: int = MAX_DECOMPRESSED_BYTES
) -> Decompressed:
    """`data` decompressed by `method` (a name `compression_of` returned), at most `max_bytes`."""
    kind = METHODS.get(method)
    if kind is None:
        raise DecompressionError(f"{method} is not supported here")
    try:
        if kind == "gzip":
            return _zlib(data, method, _GZIP_OR_ZLIB, max_bytes)
        if kind == "deflate":
            # HTTP's "deflate" is a zlib stream, though some send raw deflate.
            try:
                return _zlib(data, method, _GZIP_OR_ZLIB, max_bytes)
            except zlib.error:
                return _zlib(data, method, _RAW_DEFLATE, max_bytes)
        decompressor = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
        out = decompressor.decompress(data, max_length=max_bytes + 1)
        return _result(method, out, max_bytes, ended=decompressor.eof)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
        raise DecompressionError(str(exc) or type(exc).__name__) from exc


def _zlib(data: bytes, method: str, wbits: int, max_bytes: int) -> Decompressed:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(data, max_bytes + 1)
    return _result(method, out, max_bytes, ended=decompressor.eof)


def _result(method: str, out: bytes, max_bytes: int, *, ended: bool) -> Decompressed:
    cut = len(out) > max_bytes
    return Decompressed(
        method=method, data=out[:max_bytes], cut=cut, incomplete=not cut and not ended
    )
