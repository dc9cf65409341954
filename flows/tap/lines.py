"""A tap event as one line of text, for `manage.py tail`: pure, tables of tests.

`HH:MM:SS.mmm  publish  <exchange>  <routing key>  -> <queues> | UNROUTABLE  <size>  <body>`
and for deliveries `... deliver  <queue>  -> <connection> ch <n> [redelivered] ...`. The body
is its first line, cut at `BODY_CHARS`; control characters are shown escaped, so a body can
never move the terminal's cursor or change its colours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flows.live.body import human_size
from flows.live.rows import clock
from flows.topology.records import exchange_label

BODY_CHARS = 80


def _safe(text: Any) -> str:
    """Text with control characters escaped (`\\x1b`, `\\n`), for a terminal."""
    value = text if isinstance(text, str) else ("" if text is None else str(text))
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in value
    )


def body_summary(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    preview = body.get("preview")
    text = preview if isinstance(preview, str) else ""
    if body.get("encoding") == "base64":
        text = f"base64:{text}"
    elif body.get("encoding") == "json":
        try:  # pretty-printed JSON back on one line
            text = json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            text = " ".join(text.split())
    cut = len(text) > BODY_CHARS or body.get("truncated") is True
    return _safe(text[:BODY_CHARS]) + ("…" if cut else "")


def event_line(event: Mapping[str, Any]) -> str:
    """One readable line for a tap event."""
    kind = event.get("kind")
    body = event.get("body") if isinstance(event.get("body"), Mapping) else {}
    assert isinstance(body, Mapping)
    size = body.get("size")
    parts = [clock(event.get("received_at")) or "--:--:--.---", f"{_safe(kind):<7}"]
    if kind == "deliver":
        parts.append(f"queue {_safe(event.get('queue'))}")
        who = _safe(event.get("connection")) or "a consumer"
        if event.get("channel") is not None:
            who += f" ch {event.get('channel')}"
        parts.append(f"-> {who}")
        if event.get("redelivered"):
            parts.append("redelivered")
    else:
        parts.append(_safe(exchange_label(str(event.get("exchange") or ""))))
        parts.append(_safe(event.get("routing_key")) or '""')
        routed = event.get("routed_queues")
        if event.get("unroutable") is True:
            parts.append("-> UNROUTABLE")
        elif isinstance(routed, list):
            parts.append("-> " + ", ".join(_safe(queue) for queue in routed))
    if isinstance(size, int) and not isinstance(size, bool):
        parts.append(human_size(size))
    summary = body_summary(body)
    if summary:
        parts.append(summary)
    return "  ".join(parts)
