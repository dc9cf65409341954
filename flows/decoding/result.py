"""What a decoder says about a body: `Decoded`, and a Celery task's fields: `CeleryTask`.

Both are plain, frozen data: the live page's details render them, and `as_json` is the
`decoded` field of the `/ws/tap/` stream (README.md, "The JSON stream").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class CeleryTask:
    """A Celery task message, protocol 1 (all in the body) or 2 (metadata in headers)."""

    protocol: int
    task: str
    id: str
    args: Any  # JSON data (None when the body could not be read)
    kwargs: Any
    args_text: str  # as shown: JSON, or Python literals for a pickle
    kwargs_text: str
    retries: Any = None
    eta: Any = None
    expires: Any = None
    parent_id: Any = None
    root_id: Any = None
    group: Any = None
    origin: Any = None
    # The rest of what the message says (callbacks, errbacks, chain, chord, timelimit, ...).
    extra: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "task": self.task,
            "id": self.id,
            "args": self.args,
            "kwargs": self.kwargs,
            "retries": self.retries,
            "eta": self.eta,
            "expires": self.expires,
            "parent_id": self.parent_id,
            "root_id": self.root_id,
            "group": self.group,
            "origin": self.origin,
            "extra": self.extra,
            "notes": list(self.notes),
        }

    @property
    def rows(self) -> tuple[tuple[str, str], ...]:
        """(label, text) for a card, unset fields left out (task, id, args, kwargs always)."""
        rows = [
            ("task", self.task),
            ("id", self.id),
            ("args", self.args_text),
            ("kwargs", self.kwargs_text),
        ]
        for label, value in (
            ("retries", self.retries),
            ("eta", self.eta),
            ("expires", self.expires),
            ("parent id", self.parent_id),
            ("root id", self.root_id),
            ("group", self.group),
            ("origin", self.origin),
        ):
            if value is not None and value != "":
                rows.append((label, str(value)))
        rows.append(("protocol", str(self.protocol)))
        return tuple(rows)


@dataclass(frozen=True)
class Decoded:
    """A body decoded by one decoder (after decompression, if any), or why it could not be.

    `error` is set, as "could not decode as X: reason", exactly when decoding failed; the
    raw body is shown next to it as ever.
    """

    decoder: str  # json, text, pickle, msgpack, cbor, yaml, protobuf; or the compression
    label: str  # what a person reads as the title: "Celery task (protocol 2, pickle)"
    value: Any = None  # the decoded body as JSON data
    # Writes the decoded body for a person (`text`): only the page needs it, so only the page
    # pays for it (JSON with indentation has no fast encoder).
    render: Callable[[], str] | None = field(default=None, compare=False, repr=False)
    text_is_json: bool = False  # `text` is JSON (the page colours it)
    error: str = ""
    decompressed: str = ""  # how it was decompressed, when it was
    disassembly: str = ""  # pickle: `pickletools.dis`
    celery: CeleryTask | None = None
    notes: tuple[str, ...] = ()
    # Something in it was hidden by FLOWS_MASK (`flows.decoding.masked`): the raw body, which
    # holds it too, must not be shown beside it.
    masked: bool = False

    @property
    def ok(self) -> bool:
        return not self.error

    @cached_property
    def text(self) -> str:
        """The decoded body as a person reads it (pretty JSON, Python literals, fields)."""
        return self.render() if self.render is not None else ""

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "decoder": self.decoder,
            "label": self.label,
            "ok": self.ok,
            "error": self.error or None,
            "value": self.value,
            "notes": list(self.notes),
            "celery": self.celery.as_json() if self.celery else None,
        }
        if self.decompressed:
            result["decompressed"] = self.decompressed
        if self.decoder == "pickle":
            result["disassembly"] = self.disassembly
        if self.masked:
            result["masked"] = True
        return result


def failed(decoder: str, label: str, reason: str, **more: Any) -> Decoded:
    return Decoded(
        decoder=decoder, label=label, error=f"could not decode as {label}: {reason}", **more
    )
