"""A tap event's body decoded: the bytes back from its preview, then `decode_message`.

A tap event (`flows.tap.events.TapEvent`) carries its body as a preview: JSON (perhaps
pretty-printed, which changes no value), UTF-8 text, or base64 for binary, perhaps cut.
`worth_decoding` tells from the event alone, without reading the body, whether a decoder
could apply; for the rest (most messages: plain JSON and text) nothing more is done.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flows.decoding.celery import is_protocol_2
from flows.decoding.compression import GZIP_MAGIC, compression_of
from flows.decoding.masked import mask_decoded
from flows.decoding.message import DECODED_TYPES, UNSPECIFIC_TYPES, decode_message, media_type
from flows.decoding.result import Decoded
from flows.masking import Mask, configured_mask

# Base64 of a pickle's first byte (PROTO, 0x80) and of gzip's magic (0x1f 0x8b).
_PICKLE_B64 = "gA"
_GZIP_B64 = base64.b64encode(GZIP_MAGIC + b"\x08").decode()


def _mapping(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # events are plain dicts: skip the slow check against the ABC
        return value
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def worth_decoding(event: Mapping[str, Any]) -> bool:
    """Whether a decoder may apply: False means `decode_event` answers None."""
    properties, headers = _mapping(event.get("properties")), _mapping(event.get("headers"))
    body = _mapping(event.get("body"))
    ctype = media_type(_text(properties.get("content_type")))
    if ctype in DECODED_TYPES or is_protocol_2(headers):
        return True
    if compression_of(_text(properties.get("content_encoding")), headers.get("compression")):
        return True
    preview = _text(body.get("preview")) or ""
    if body.get("encoding") == "base64":
        return ctype in UNSPECIFIC_TYPES and preview.startswith((_PICKLE_B64, _GZIP_B64))
    return '"task"' in preview  # a protocol 1 task names its task in the body


def preview_bytes(body: Mapping[str, Any]) -> tuple[bytes, bool] | None:
    """(the body's bytes as far as the preview has them, whether they are cut), or None."""
    preview = body.get("preview")
    if not isinstance(preview, str):
        return None
    truncated = body.get("truncated") is True
    if body.get("encoding") == "base64":
        if truncated:  # a preview cut by the page may end inside a group of four characters
            preview = preview[: len(preview) - len(preview) % 4]
        try:
            return base64.b64decode(preview, validate=True), truncated
        except (binascii.Error, ValueError):
            return None
    return preview.encode("utf-8", errors="surrogatepass"), truncated


def decode_event(event: Mapping[str, Any], mask: Mask | None = None) -> Decoded | None:
    """The decoded form of the event's body, or None when no decoder applies.

    Masked by `mask` (the deployment's `FLOWS_MASK` unless given): every caller shows it to
    someone, and the tap could not mask what only a decoder reads (`flows.decoding.masked`).
    """
    if not worth_decoding(event):
        return None
    raw = preview_bytes(_mapping(event.get("body")))
    if raw is None:
        return None
    data, truncated = raw
    properties = _mapping(event.get("properties"))
    decoded = decode_message(
        data,
        content_type=_text(properties.get("content_type")),
        content_encoding=_text(properties.get("content_encoding")),
        headers=_mapping(event.get("headers")),
        truncated=truncated,
    )
    if decoded is None:
        return None
    return mask_decoded(decoded, configured_mask() if mask is None else mask)


def out_of_time(budget_s: float) -> Decoded:
    """What an event gets when its batch spent its decoding time before reaching it."""
    return Decoded(
        decoder="none",
        label="not decoded",
        error=f"not decoded: this batch spent its {budget_s:g} s of decoding before this event",
    )


def decode_events(
    events: Iterable[Mapping[str, Any]],
    *,
    budget_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[tuple[Mapping[str, Any], Decoded | None]]:
    """Each event with its decoded form, in order, within `budget_s` for them all.

    Past the budget, an event a decoder may apply to gets `out_of_time` instead: a burst of
    large pickles must not hold up the stream.
    """
    deadline = clock() + budget_s
    mask = configured_mask()
    result: list[tuple[Mapping[str, Any], Decoded | None]] = []
    for event in events:
        if not worth_decoding(event):
            result.append((event, None))
        elif clock() > deadline:
            result.append((event, out_of_time(budget_s)))
        else:
            result.append((event, decode_event(event, mask)))
    return result
