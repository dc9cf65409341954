"""A tap event's body decoded: the bytes back from its preview, then `decode_message`.

A tap event (`flows.tap.events.TapEvent`) carries its body as a preview: JSON (perhaps
pretty-printed, which changes no value), UTF-8 text, or base64 for binary, perhaps cut.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from flows.decoding.message import decode_message
from flows.decoding.result import Decoded


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


def decode_event(event: Mapping[str, Any]) -> Decoded | None:
    """The decoded form of the event's body, or None when no decoder applies."""
    body = event.get("body")
    properties = event.get("properties")
    headers = event.get("headers")
    if not isinstance(body, Mapping):
        return None
    raw = preview_bytes(body)
    if raw is None:
        return None
    data, truncated = raw
    properties = properties if isinstance(properties, Mapping) else {}
    content_type = properties.get("content_type")
    content_encoding = properties.get("content_encoding")
    return decode_message(
        data,
        content_type=content_type if isinstance(content_type, str) else None,
        content_encoding=content_encoding if isinstance(content_encoding, str) else None,
        headers=headers if isinstance(headers, Mapping) else {},
        truncated=truncated,
    )
