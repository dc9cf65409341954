"""The database side of recordings: every read and write of `Recording` and `RecordedEvent`.

Blocking (database): call from a sync view, a thread, or `database_sync_to_async`.

Size is counted as the bytes of each event's JSON (UTF-8), the same text an export writes
for it; a batch is stored up to the event that would cross `max_bytes`, and the recording
then stops as `full` (recording stops at the bound; nothing already stored is dropped).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from flows import audit
from flows.models import RecordedEvent, Recording

DEFAULT_HOURS = 24.0
DEFAULT_MAX_BYTES = 1024**3  # 1 GiB
MAX_HOURS = 24.0 * 7
MIB = 1024 * 1024

STOP_MESSAGES = {
    Recording.STOPPED: "stopped by {who}",
    Recording.EXPIRED: "its time was up",
    Recording.FULL: "stopped at its size bound ({bound}): later events were not recorded",
}


class BoundsError(ValueError):
    """A recording's bounds that are not valid; `field` names the one to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_bounds(hours: Any, max_mb: Any) -> tuple[float, int]:
    """(hours, max bytes) from a form's or a command's text; blanks take the defaults."""
    try:
        hours_value = DEFAULT_HOURS if hours in (None, "") else float(hours)
    except (TypeError, ValueError):
        raise BoundsError("hours", f"hours must be a number, got {hours!r}") from None
    if not 0 < hours_value <= MAX_HOURS:
        raise BoundsError("hours", f"hours must be more than 0 and at most {MAX_HOURS:g}")
    try:
        mb_value = DEFAULT_MAX_BYTES / MIB if max_mb in (None, "") else float(max_mb)
    except (TypeError, ValueError):
        raise BoundsError("max_mb", f"max_mb must be a number, got {max_mb!r}") from None
    if not mb_value > 0:
        raise BoundsError("max_mb", "max_mb must be more than 0")
    return hours_value, max(1, int(mb_value * MIB))


def event_size(event: Mapping[str, Any]) -> int:
    return len(export_line(event).encode("utf-8")) + 1  # and its newline


def export_line(event: Mapping[str, Any]) -> str:
    """One line of an export: the format of `manage.py tail --json` and the live page."""
    return json.dumps(event, ensure_ascii=False)


def start(
    *, vhost: str, user: Any, hours: float = DEFAULT_HOURS, max_bytes: int = DEFAULT_MAX_BYTES
) -> Recording:
    now = timezone.now()
    linked = user if getattr(user, "pk", None) is not None else None
    recording = Recording.objects.create(
        vhost=vhost,
        started_by=linked,
        ends_at=now + dt.timedelta(hours=hours),
        max_bytes=max_bytes,
    )
    audit.record(
        user if linked is not None else getattr(user, "username", "manage.py record"),
        audit.RECORDING_START,
        vhost=vhost,
        target=f"recording {recording.pk}",
        details={"hours": hours, "max_bytes": max_bytes},
    )
    return recording


@dataclass(frozen=True)
class Appended:
    """What `append` did: how many events it stored, and the recording's state after it."""

    stored: int
    state: str


def append(
    recording_id: int, events: Sequence[Mapping[str, Any]], *, now: dt.datetime | None = None
) -> Appended:
    """Store `events` (in order) within the recording's bounds; stop it at a bound.

    Nothing is stored once the recording is over (stopped elsewhere, expired, full).
    """
    now = now or timezone.now()
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording_id)
        if recording.state != Recording.RUNNING:
            return Appended(0, recording.state)
        if now >= recording.ends_at:
            _finish(recording, Recording.EXPIRED, now)
            return Appended(0, recording.state)
        rows: list[RecordedEvent] = []
        size, full = recording.bytes_stored, False
        for event in events:
            grown = size + event_size(event)
            if grown > recording.max_bytes:
                full = True
                break
            size = grown
            rows.append(_row(recording, recording.events_stored + len(rows) + 1, event))
        RecordedEvent.objects.bulk_create(rows)
        recording.bytes_stored = size
        recording.events_stored += len(rows)
        if full:
            _finish(recording, Recording.FULL, now, save=False)
        recording.save()
        return Appended(len(rows), recording.state)


def stop(recording_id: int, *, user: Any = None, state: str = Recording.STOPPED) -> Recording:
    """End a running recording (a recorder notices at its next write and leaves the tap)."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording_id)
        if recording.state == Recording.RUNNING:
            _finish(recording, state, timezone.now(), who=_name(user))
    if user is not None:
        audit.record(
            user,
            audit.RECORDING_STOP,
            vhost=recording.vhost,
            target=f"recording {recording.pk}",
            details={"state": recording.state, "bytes_stored": recording.bytes_stored},
        )
    return recording


def fail(recording_id: int, message: str) -> None:
    Recording.objects.filter(pk=recording_id, state=Recording.RUNNING).update(
        state=Recording.FAILED, stopped_at=timezone.now(), message=message[:2000]
    )


def set_mode(recording_id: int, mode: str) -> None:
    Recording.objects.filter(pk=recording_id).update(mode=mode)


def _finish(
    recording: Recording, state: str, now: dt.datetime, *, who: str = "", save: bool = True
) -> None:
    recording.state = state
    recording.stopped_at = now
    recording.message = STOP_MESSAGES.get(state, state).format(
        who=who or "someone", bound=_size_text(recording.max_bytes)
    )
    if save:
        recording.save(update_fields=["state", "stopped_at", "message"])


def _name(user: Any) -> str:
    if isinstance(user, str):
        return user
    return user.get_username() if user is not None else ""


def _row(recording: Recording, seq: int, event: Mapping[str, Any]) -> RecordedEvent:
    properties = event.get("properties") or {}
    received = event.get("received_at")
    at = (
        dt.datetime.fromtimestamp(received, dt.UTC)
        if isinstance(received, int | float)
        else timezone.now()
    )
    return RecordedEvent(
        recording=recording,
        seq=seq,
        kind=str(event.get("kind") or "")[:20],
        at=at,
        exchange=_text(event.get("exchange")),
        routing_key=_text(event.get("routing_key")),
        queue=_text(event.get("queue")),
        message_id=_text(properties.get("message_id")),
        correlation_id=_text(properties.get("correlation_id")),
        event=dict(event),
    )


def _text(value: Any) -> str:
    return value[:255] if isinstance(value, str) else ""


def _size_text(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n} bytes"


# --- reads --------------------------------------------------------------------------------------


def running(vhost: str | None = None, *, now: dt.datetime | None = None) -> QuerySet[Recording]:
    """The recordings still running (one whose process died counts as over at `ends_at`)."""
    found = Recording.objects.filter(state=Recording.RUNNING, ends_at__gt=now or timezone.now())
    return found.filter(vhost=vhost) if vhost is not None else found


def events_of_message(
    vhost: str, *, message_id: str = "", correlation_id: str = ""
) -> list[dict[str, Any]]:
    """The recorded events of `vhost` carrying the message id (or correlation id), in the
    order they were seen."""
    match = Q()
    if message_id:
        match |= Q(message_id=message_id)
    if correlation_id:
        match |= Q(correlation_id=correlation_id)
    if not match:
        return []
    rows = (
        RecordedEvent.objects.filter(match, recording__vhost=vhost)
        .order_by("at", "recording_id", "seq")
        .values_list("event", flat=True)
    )
    # Two recordings running at once share the vhost's tap: each stored the same event.
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for event in rows:
        key = (event.get("received_at"), event.get("seq"), event.get("kind"), event.get("queue"))
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


# The most recorded events one search by header value or body text reads (newest first).
SEARCH_SCAN_LIMIT = 200_000
SEARCH_MAX_MESSAGES = 20


def messages_matching(vhost: str, event_filter: Any) -> tuple[list[str], bool]:
    """The message ids (newest first, at most SEARCH_MAX_MESSAGES) of `vhost`'s recorded
    events that `event_filter` (a `flows.tap.filters.EventFilter`: a header's value, body
    text) matches, and whether the search stopped before reading everything.

    Read in Python with the live page's own filter, on events masked already, so a masked
    value is never found (`FLOWS_MASK`). Bounded: at most SEARCH_SCAN_LIMIT events.
    """
    found: list[str] = []
    rows = (
        RecordedEvent.objects.filter(recording__vhost=vhost)
        .order_by("-at", "-id")
        .values_list("message_id", "event")
    )
    for scanned, (message_id, event) in enumerate(rows.iterator(2000), start=1):
        if scanned > SEARCH_SCAN_LIMIT:
            return found, True
        if message_id and message_id not in found and event_filter.matches(event):
            found.append(message_id)
            if len(found) >= SEARCH_MAX_MESSAGES:
                return found, True
    return found, False


def export_lines(recording: Recording) -> Iterator[str]:
    """The recording as JSON Lines, in order, read in chunks."""
    for event in recording.events.order_by("seq").values_list("event", flat=True).iterator(500):
        yield export_line(event) + "\n"


def to_json(recording: Recording) -> dict[str, Any]:
    return {
        "id": recording.pk,
        "vhost": recording.vhost,
        "started_by": recording.started_by.get_username() if recording.started_by else "",
        "started_at": recording.started_at.isoformat(),
        "ends_at": recording.ends_at.isoformat(),
        "max_bytes": recording.max_bytes,
        "bytes_stored": recording.bytes_stored,
        "events_stored": recording.events_stored,
        "mode": recording.mode,
        "state": recording.state,
        "stopped_at": recording.stopped_at.isoformat() if recording.stopped_at else None,
        "message": recording.message,
    }
