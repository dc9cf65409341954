"""The audit log: who changed what on which broker, when, and how it went.

`record()` is the one way in, called wherever the dashboard writes to a broker (publishes and
repeat runs, tracing on and off, demo loads, unloads and runs, moves of messages) and where an
account's role changes; `entries()` is the one way out, for `/audit/` and `GET /api/audit`.
Entries older than `FLOWS_AUDIT_RETENTION_DAYS` (default 90) are pruned on every write and by
`manage.py prune_audit`.

Never pass a secret in `details`: for a message, its size and `message_id`, not its body or
headers (`message_details` builds exactly that).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.db.models import Q, QuerySet
from django.utils import timezone

from flows.models import AuditEntry

LOGGER = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90

# The actions recorded; `record()` takes any string, these are the ones the dashboard writes.
PUBLISH = "publish"
REPEAT_RUN = "publish.repeat"
REPLAY = "publish.replay"
TRACING_ON = "tracing.on"
TRACING_OFF = "tracing.off"
DEMO_LOAD = "demo.load"
DEMO_UNLOAD = "demo.unload"
DEMO_RUN_START = "demo.run.start"
DEMO_RUN_STOP = "demo.run.stop"
DEMO_RUN_CHANGE = "demo.run.change"
MOVE_MESSAGES = "messages.move"
ROLE_CHANGE = "role.change"
AUDIENCE_LINK = "audience_link.create"
AUDIENCE_LINK_REVOKE = "audience_link.revoke"
RECORDING_START = "recording.start"
RECORDING_STOP = "recording.stop"
ACTIONS = (
    PUBLISH,
    REPEAT_RUN,
    REPLAY,
    TRACING_ON,
    TRACING_OFF,
    DEMO_LOAD,
    DEMO_UNLOAD,
    DEMO_RUN_START,
    DEMO_RUN_STOP,
    DEMO_RUN_CHANGE,
    MOVE_MESSAGES,
    ROLE_CHANGE,
    AUDIENCE_LINK,
    AUDIENCE_LINK_REVOKE,
    RECORDING_START,
    RECORDING_STOP,
)


def retention() -> dt.timedelta:
    days = getattr(settings, "FLOWS_AUDIT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    return dt.timedelta(days=days)


def _who(user: Any) -> tuple[Any, str]:
    """The user row to link (None for a process) and the name to keep."""
    if isinstance(user, str):
        return None, user
    if user is None or not getattr(user, "is_authenticated", False):
        return None, ""
    return user, user.get_username()


def record(
    user: Any,
    action: str,
    *,
    vhost: str = "",
    target: str = "",
    details: Mapping[str, Any] | None = None,
    ok: bool = True,
    message: str = "",
) -> AuditEntry | None:
    """Write one entry; `user` is the account (or a string naming a process, "tap host:pid").

    Never raises: the write it records has happened, and a database hiccup must not turn it
    into an error for the person who made it (the failure is logged instead).
    """
    linked, username = _who(user)
    now = timezone.now()
    try:
        entry = AuditEntry.objects.create(
            at=now,
            user=linked,
            username=username[:150],
            action=action,
            vhost=vhost[:255],
            target=target[:500],
            details=dict(details or {}),
            ok=ok,
            message=message,
        )
        prune(now=now)
    except DatabaseError:
        LOGGER.exception("could not record %s by %r in the audit log", action, username)
        return None
    return entry


def record_from_thread(user: Any, action: str, **fields: Any) -> AuditEntry | None:
    """`record()` from a thread of the dashboard's own (the tap's): its own DB connection."""
    close_old_connections()
    return record(user, action, **fields)


def prune(*, now: dt.datetime | None = None) -> int:
    """Delete the entries older than the retention; how many went."""
    cutoff = (now or timezone.now()) - retention()
    deleted, _ = AuditEntry.objects.filter(at__lt=cutoff).delete()
    return deleted


def message_details(
    *, exchange: str, routing_key: str, message_id: str | None, body_bytes: int, **extra: Any
) -> dict[str, Any]:
    """What an entry keeps of a message: where it went, its id and its size, never its body."""
    return {
        "exchange": exchange,
        "routing_key": routing_key,
        "message_id": message_id,
        "body_bytes": body_bytes,
        **extra,
    }


# --- reading ------------------------------------------------------------------------------------


def entries(
    *,
    user: str = "",
    action: str = "",
    vhost: str = "",
    since: dt.datetime | None = None,
) -> QuerySet[AuditEntry]:
    """The entries matching every filter given, newest first."""
    found = AuditEntry.objects.all()
    if user:
        found = found.filter(username=user)
    if action:
        # `demo` finds every demo action; `demo.load` only loads.
        found = found.filter(Q(action=action) | Q(action__startswith=f"{action}."))
    if vhost:
        found = found.filter(vhost=vhost)
    if since is not None:
        found = found.filter(at__gte=since)
    return found.order_by("-at", "-id")


def to_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "at": entry.at.isoformat(),
        "user": entry.username,
        "action": entry.action,
        "vhost": entry.vhost,
        "target": entry.target,
        "details": entry.details,
        "result": "ok" if entry.ok else "error",
        "message": entry.message,
    }
