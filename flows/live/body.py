"""A tap event's body preview (`flows.tap.events.BodyPreview`: preview, encoding, size,
truncated), made readable.

JSON is pretty-printed and split into typed tokens (the template colours them by class, and
escapes every token like any other text); text stays text; base64 previews of binary bodies
become a hex dump. Nothing here trusts the preview: broken base64 or truncated JSON still
renders, with a note saying what happened.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

HEX_BYTES_PER_LINE = 16
# A hex dump line per 16 bytes: more than this many bytes is not read by a person.
MAX_HEX_BYTES = 64 * 1024
MAX_JSON_TOKENS = 20_000

BodyKind = Literal["json", "text", "hex", "empty"]

_JSON_TOKEN = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*")(?P<colon>\s*:)?
      |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      |(?P<literal>true|false|null)
      |(?P<punct>[{}\[\],])
      |(?P<space>\s+)
      |(?P<other>.)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str  # CSS class suffix: key, string, number, bool, null, punct, "" for plain
    text: str


@dataclass(frozen=True)
class DecodedBody:
    kind: BodyKind
    size: int
    truncated: bool
    text: str = ""
    tokens: tuple[Token, ...] = ()
    hex_lines: tuple[str, ...] = ()
    note: str = ""


def json_tokens(pretty: str) -> tuple[Token, ...]:
    """Split JSON text into tokens a template can colour; adjacent plain text merges."""
    tokens: list[Token] = []
    for match in _JSON_TOKEN.finditer(pretty):
        group = match.lastgroup
        if match.group("string") is not None:
            kind = "key" if match.group("colon") else "string"
            tokens.append(Token(kind, match.group("string")))
            if match.group("colon"):
                tokens.append(Token("punct", match.group("colon")))
            continue
        text = match.group(0)
        if group == "number":
            kind = "number"
        elif group == "literal":
            kind = "null" if text == "null" else "bool"
        elif group == "punct":
            kind = "punct"
        else:
            kind = ""
        if kind == "" and tokens and tokens[-1].kind == "":
            tokens[-1] = Token("", tokens[-1].text + text)
        else:
            tokens.append(Token(kind, text))
    return tuple(tokens)


def hex_dump(data: bytes) -> tuple[str, ...]:
    """`offset  hex bytes  |ascii|` lines, 16 bytes each, like `hexdump -C`."""
    lines = []
    for offset in range(0, len(data), HEX_BYTES_PER_LINE):
        chunk = data[offset : offset + HEX_BYTES_PER_LINE]
        hex_part = " ".join(f"{byte:02x}" for byte in chunk)
        if len(chunk) > 8:
            # A gap after the eighth byte, as hexdump -C does, to count columns by eye.
            hex_part = hex_part[:23] + " " + hex_part[23:]
        ascii_part = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hex_part:<48}  |{ascii_part}|")
    return tuple(lines)


def decode_body(body: Mapping[str, Any] | None) -> DecodedBody:
    """The body of a tap event, ready for the details panel."""
    body = body if isinstance(body, Mapping) else {}
    preview = body.get("preview")
    preview = preview if isinstance(preview, str) else ""
    encoding = body.get("encoding")
    size = body.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) else len(preview)
    truncated = body.get("truncated") is True
    cut = " (preview: the body is longer)" if truncated else ""

    if size == 0 and not preview:
        return DecodedBody(kind="empty", size=0, truncated=False)

    if encoding == "base64":
        try:
            data = base64.b64decode(preview, validate=True)
        except (binascii.Error, ValueError):
            return DecodedBody(
                kind="text",
                size=size,
                truncated=truncated,
                text=preview,
                note="binary body whose preview is not valid base64; shown as received",
            )
        shown = data[:MAX_HEX_BYTES]
        note = "binary" + cut
        if len(data) > MAX_HEX_BYTES:
            note = f"binary; first {MAX_HEX_BYTES} bytes shown"
        return DecodedBody(
            kind="hex", size=size, truncated=truncated, hex_lines=hex_dump(shown), note=note
        )

    if encoding == "json":
        try:
            value = json.loads(preview)
        except ValueError:
            return DecodedBody(
                kind="text",
                size=size,
                truncated=truncated,
                text=preview,
                note="JSON" + (cut or " that does not parse") + "; shown as text",
            )
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        tokens = json_tokens(pretty)
        if len(tokens) > MAX_JSON_TOKENS:
            return DecodedBody(
                kind="text", size=size, truncated=truncated, text=pretty, note="JSON" + cut
            )
        return DecodedBody(
            kind="json", size=size, truncated=truncated, text=pretty, tokens=tokens, note=cut
        )

    return DecodedBody(
        kind="text", size=size, truncated=truncated, text=preview, note=("text" + cut)
    )


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
