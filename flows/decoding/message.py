"""Which decoder reads a message body, chosen by content type, content encoding and shape.

`decode_message` is the one entry point: it decompresses what the message says is
compressed (`content_encoding`, or kombu's `compression` header), reads the body with the
decoder its content type names (or that its first bytes give away, for a pickle or a gzip
stream sent without a content type), and recognises a Celery task in the result. It
answers None when no decoder has anything to add to the raw body (plain JSON, text,
unknown binary), and never raises: a failure is a `Decoded` whose `error` says why.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from flows.decoding import binary_formats, pickle_reader, protobuf_wire
from flows.decoding.bounds import MAX_INPUT_BYTES, MAX_TEXT_CHARS, Budget, LimitReached
from flows.decoding.celery import celery_task, is_protocol_2
from flows.decoding.compression import (
    GZIP_MAGIC,
    DecompressionError,
    compression_of,
    decompress,
)
from flows.decoding.result import CeleryTask, Decoded, failed
from flows.decoding.values import literal_text, plain

LABELS = {
    "json": "JSON",
    "text": "text",
    "pickle": "pickle",
    "msgpack": "msgpack",
    "cbor": "CBOR",
    "yaml": "YAML",
    "protobuf": "protobuf wire format",
}
_JSON_TYPES = frozenset({"application/json", "text/json", "application/x-json"})
# Bodies whose content type says nothing of their format: their first bytes may.
UNSPECIFIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# How much text a decoded body is shown as (more than the tap's largest preview).
MAX_SHOWN_CHARS = 4 * MAX_TEXT_CHARS


# Content types a decoder reads whatever the body holds (JSON only for a task).
DECODED_TYPES = (
    pickle_reader.CONTENT_TYPES
    | binary_formats.MSGPACK_CONTENT_TYPES
    | binary_formats.CBOR_CONTENT_TYPES
    | binary_formats.YAML_CONTENT_TYPES
    | protobuf_wire.CONTENT_TYPES
)


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_message(
    body: bytes,
    *,
    content_type: str | None = None,
    content_encoding: str | None = None,
    headers: Mapping[str, Any] | None = None,
    truncated: bool = False,
) -> Decoded | None:
    """The decoded form of a message body, or None when no decoder applies.

    `truncated`: `body` is the first part of a longer body (a preview); decoders read what
    is there and say so.
    """
    headers = headers or {}
    try:
        return _decode(body, media_type(content_type), content_encoding, headers, truncated)
    except Exception as exc:  # the contract: never raise out, whatever the body holds
        return failed("body", "this body", f"{type(exc).__name__}: {exc}")


def _decode(
    body: bytes,
    ctype: str,
    content_encoding: str | None,
    headers: Mapping[str, Any],
    truncated: bool,
) -> Decoded | None:
    cut = truncated or len(body) > MAX_INPUT_BYTES
    data = body[:MAX_INPUT_BYTES]
    notes: list[str] = []
    decompressed = ""
    compression = compression_of(content_encoding, headers.get("compression"))
    if compression is None and ctype in UNSPECIFIC_TYPES and data.startswith(GZIP_MAGIC):
        compression = "gzip"
        notes.append("gzip, recognised by its first bytes")
    if compression is not None:
        try:
            result = decompress(data, compression)
        except DecompressionError as exc:
            return failed(compression, compression, str(exc), notes=tuple(notes))
        data, decompressed = result.data, result.note
        cut = result.cut or (cut or result.incomplete)
    if cut:
        notes.append("only the first part of the body was there to read")
    decoder = _choose(ctype, data, headers, compressed=compression is not None)
    if decoder is None:
        return None
    reader = _READERS[decoder]
    decoded = reader(data, headers, compression is not None)
    if decoded is None:
        return None
    more_notes = tuple(notes) + decoded.notes
    if cut and decoded.error:
        more_notes += ("the error may only mean the body was cut",)
    return dataclasses.replace(decoded, decompressed=decompressed, notes=more_notes)


def _choose(ctype: str, data: bytes, headers: Mapping[str, Any], *, compressed: bool) -> str | None:
    if ctype in pickle_reader.CONTENT_TYPES:
        return "pickle"
    if ctype in binary_formats.MSGPACK_CONTENT_TYPES:
        return "msgpack"
    if ctype in binary_formats.CBOR_CONTENT_TYPES:
        return "cbor"
    if ctype in binary_formats.YAML_CONTENT_TYPES:
        return "yaml"
    if ctype in protobuf_wire.CONTENT_TYPES:
        return "protobuf"
    if ctype in _JSON_TYPES or ctype.endswith("+json"):
        return "json"
    if ctype in UNSPECIFIC_TYPES:
        if pickle_reader.looks_like_pickle(data):
            return "pickle"
        if data.lstrip()[:1] in (b"{", b"["):
            return "json"  # which reads it only for a task, or once decompressed
    # Text, or a type no decoder reads: worth showing only once decompressed.
    return "text" if compressed else None


# --- the readers: (data, headers, compressed) -> Decoded | None -------------------------------


def _cut(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def _json_text(value: Any) -> Callable[[], str]:
    return lambda: _cut(json.dumps(value, indent=2, ensure_ascii=False))


def _show_json(value: Any) -> str:
    return json.dumps(plain(value), ensure_ascii=False)


def _label(decoder: str, task: CeleryTask | None) -> str:
    if task is None:
        return LABELS[decoder]
    return f"Celery task (protocol {task.protocol}, {LABELS[decoder]})"


def _structured(
    decoder: str,
    read: Callable[[bytes], tuple[Any, tuple[str, ...]]],
    data: bytes,
    headers: Mapping[str, Any],
    *,
    show: Callable[[Any], str] = _show_json,
) -> Decoded:
    """A decoder of a format that holds data: its value, as JSON, and any Celery task in it."""
    try:
        value, notes = read(data)
    except Exception as exc:  # each library has its own errors; all mean "cannot read"
        task = celery_task(headers, None, body_read=False, show=show)
        return failed(decoder, LABELS[decoder], _reason(exc), celery=task)
    task = celery_task(headers, value, body_read=True, show=show)
    shown = plain(value)
    return Decoded(
        decoder=decoder,
        label=_label(decoder, task),
        value=shown,
        render=_json_text(shown),
        text_is_json=True,
        celery=task,
        notes=notes,
    )


def _reason(exc: Exception) -> str:
    """The library's own sentence; its class name only where the sentence needs it."""
    message = str(exc).strip()
    if not message or isinstance(exc, LookupError | TypeError | AttributeError):
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return message


def _read_json(data: bytes, headers: Mapping[str, Any], compressed: bool) -> Decoded | None:
    # Plain JSON is shown well enough by the raw body; only a task (or a decompressed body)
    # is worth the parse, and a protocol 1 task's body names its "task".
    if not compressed and not is_protocol_2(headers) and b'"task"' not in data:
        return None
    decoded = _structured("json", lambda raw: (json.loads(raw), ()), data, headers)
    if decoded.celery is None and not compressed:
        return None
    return decoded


def _read_text(data: bytes, headers: Mapping[str, Any], compressed: bool) -> Decoded:
    shown = _cut(data.decode("utf-8", errors="replace"))
    return Decoded(decoder="text", label="text", value=shown, render=lambda: shown)


def _read_msgpack(data: bytes, headers: Mapping[str, Any], compressed: bool) -> Decoded:
    return _structured("msgpack", lambda raw: (binary_formats.read_msgpack(raw), ()), data, headers)


def _read_cbor(data: bytes, headers: Mapping[str, Any], compressed: bool) -> Decoded:
    def read(raw: bytes) -> tuple[Any, tuple[str, ...]]:
        value, left = binary_formats.read_cbor(raw)
        return value, ((f"{left} bytes after the first CBOR item not read",) if left else ())

    return _structured("cbor", read, data, headers)


def _read_yaml(data: bytes, headers: Mapping[str, Any], compressed: bool) -> Decoded:
    yaml = binary_formats.yaml_module()
    if yaml is None:
        task = celery_task(headers, None, body_read=False, show=_show_json)
        text = _cut(data.decode("utf-8", errors="replace"))
        return Decoded(
            decoder="text",
            label=_label("yaml", task) if task else "YAML, shown as text",
            value=text,
            render=lambda: text,
            celery=task,
            notes=("PyYAML is not installed here, so YAML is shown as text",),
        )
    return _structured("yaml", lambda raw: (binary_formats.read_yaml(raw, yaml), ()), data, headers)


def _read_pickle(data: bytes, headers: Mapping[str, Any], compressed: bool) -> Decoded:
    disassembly, stopped = pickle_reader.disassemble(data)
    try:
        reading = pickle_reader.read_literal(data, budget=Budget())
    except (pickle_reader.Malformed, LimitReached) as exc:
        task = celery_task(headers, None, body_read=False, show=literal_text)
        return failed("pickle", "pickle", str(exc), disassembly=disassembly, celery=task)
    notes = ["read without unpickling: nothing was imported or called"]
    if reading.markers:
        markers = ", ".join(reading.markers[:5]) + (", …" if len(reading.markers) > 5 else "")
        notes.append(f"shown by name only, as unpickling would build or call them: {markers}")
    if stopped:
        notes.append(stopped)
    task = celery_task(headers, reading.value, body_read=True, show=literal_text)
    return Decoded(
        decoder="pickle",
        label=_label("pickle", task),
        value=plain(reading.value),
        render=lambda: literal_text(reading.value),
        disassembly=disassembly,
        celery=task,
        notes=tuple(notes),
    )


def _read_protobuf(data: bytes, headers: Mapping[str, Any], compressed: bool) -> Decoded:
    try:
        fields = protobuf_wire.read_wire_format(data, budget=Budget())
    except (protobuf_wire.WireError, LimitReached) as exc:
        return failed("protobuf", LABELS["protobuf"], str(exc))
    return Decoded(
        decoder="protobuf",
        label=LABELS["protobuf"],
        value=protobuf_wire.as_plain(fields),
        render=lambda: _cut(protobuf_wire.as_text(fields)),
        notes=("without its schema: field numbers and wire types only",),
    )


_READERS: dict[str, Callable[[bytes, Mapping[str, Any], bool], Decoded | None]] = {
    "json": _read_json,
    "text": _read_text,
    "msgpack": _read_msgpack,
    "cbor": _read_cbor,
    "yaml": _read_yaml,
    "pickle": _read_pickle,
    "protobuf": _read_protobuf,
}
