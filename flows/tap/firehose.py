"""Switching a vhost's tracing on for a firehose tap, and always back again.

Tracing is the broker administrator's setting: the tap turns it on only when an
administrator allowed it (the `use_firehose` action of `flows.access`, held by the admin
role, or the vhost listed in `FLOWS_FIREHOSE_VHOSTS`), never on a read-only dashboard
(`FLOWS_READ_ONLY`), records what it found in a `TapFirehoseLease` row *before*
changing anything, and restores that when the last tap on the vhost stops. Every switch is
recorded in the audit log (`flows.audit`), with the user whose viewer started the tap. A tap that
died without cleaning up leaves its lease behind; `restore_stale_leases` (run by
`manage.py tap --restore-tracing` and before any firehose tap starts) puts the vhost back.

These functions do blocking I/O (database, management API): call them from a thread,
never from the event loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from flows import access, audit
from flows.access import Action
from flows.broker.errors import BrokerError, BrokerNotFound
from flows.broker.management_api import ManagementClient
from flows.runtime import runtime

LOGGER = logging.getLogger(__name__)

# A lease whose tap has not said it is alive for this long belongs to a dead tap.
LEASE_STALE_AFTER = dt.timedelta(seconds=45)


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ReadOnlyTracing(BrokerError):
    """A read-only dashboard does not switch tracing on."""


def firehose_configured(vhost: str) -> bool:
    """The administrator allowed the firehose on this vhost by configuration (not read-only)."""
    return vhost in getattr(settings, "FLOWS_FIREHOSE_VHOSTS", []) and not access.read_only()


def user_may_choose_firehose(user, vhost: str) -> bool:
    """Blocking (database): the user may switch tracing on for this vhost."""
    if firehose_configured(vhost):
        return access.can(user, Action.VIEW, vhost)
    return access.can(user, Action.USE_FIREHOSE, vhost)


def _set_tracing(
    client: ManagementClient, vhost: str, *, enabled: bool, by: str, reason: str
) -> None:
    """Switch tracing, and record it (or its failure) in the audit log."""
    action = audit.TRACING_ON if enabled else audit.TRACING_OFF
    details = {"reason": reason, "tap": this_owner()}
    who = by or f"tap {this_owner()}"
    try:
        client.set_tracing(vhost, enabled=enabled)
    except BrokerNotFound:
        if enabled:
            raise
        # Deleted meanwhile: there is no tracing left to put back.
        LOGGER.info("vhost %r is gone: no tracing to switch off", vhost)
        return
    except BrokerError as exc:
        audit.record_from_thread(
            who, action, vhost=vhost, target=vhost, details=details, ok=False, message=exc.message
        )
        raise
    audit.record_from_thread(who, action, vhost=vhost, target=vhost, details=details)


def _owner_is_dead(owner: str) -> bool:
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _is_stale(lease, now: dt.datetime) -> bool:
    return lease.heartbeat_at < now - LEASE_STALE_AFTER or _owner_is_dead(lease.owner)


@dataclass(frozen=True)
class Lease:
    id: int
    vhost: str
    tracing_was_on: bool
    started_by: str = ""


def restore_stale_leases(
    vhost: str | None = None, *, client: ManagementClient | None = None
) -> list[str]:
    """Restore tracing for vhosts whose firehose taps died; return the vhosts restored.

    A vhost that still has a live lease keeps tracing on: its tap still needs it, and will
    restore the recorded state itself (every lease of a vhost records the same state).
    """
    from flows.models import TapFirehoseLease

    client = client or runtime().management_client
    close_old_connections()
    now = timezone.now()
    leases = TapFirehoseLease.objects.order_by("started_at", "id")
    if vhost is not None:
        leases = leases.filter(vhost=vhost)
    by_vhost: dict[str, list] = {}
    for lease in leases:
        by_vhost.setdefault(lease.vhost, []).append(lease)
    restored = []
    for name, vhost_leases in by_vhost.items():
        stale = [lease for lease in vhost_leases if _is_stale(lease, now)]
        if not stale:
            continue
        if len(stale) == len(vhost_leases):
            was_on = stale[0].tracing_was_on
            _set_tracing(
                client, name, enabled=was_on, by="", reason="restored after a firehose tap died"
            )
            LOGGER.warning(
                "restored tracing on vhost %r to %s after a firehose tap died",
                name,
                "on" if was_on else "off",
            )
            restored.append(name)
        TapFirehoseLease.objects.filter(id__in=[lease.id for lease in stale]).delete()
    return restored


def acquire_lease(
    vhost: str, *, client: ManagementClient | None = None, started_by: str = ""
) -> Lease:
    """Record the vhost's tracing state, then make sure tracing is on.

    `started_by`: the user whose viewer started the tap, for the audit log. On a read-only
    dashboard tracing must be on already (`ReadOnlyTracing` otherwise).
    """
    from flows.models import TapFirehoseLease

    client = client or runtime().management_client
    if access.read_only() and not client.vhost(vhost).tracing:
        raise ReadOnlyTracing(access.READ_ONLY)
    restore_stale_leases(vhost, client=client)
    with transaction.atomic():
        oldest = TapFirehoseLease.objects.filter(vhost=vhost).order_by("started_at", "id").first()
        was_on = oldest.tracing_was_on if oldest else client.vhost(vhost).tracing
        lease = TapFirehoseLease.objects.create(
            vhost=vhost, tracing_was_on=was_on, owner=this_owner(), heartbeat_at=timezone.now()
        )
    if not client.vhost(vhost).tracing:
        _set_tracing(client, vhost, enabled=True, by=started_by, reason="firehose tap started")
        LOGGER.info("switched tracing on for vhost %r (firehose tap)", vhost)
    return Lease(id=lease.id, vhost=vhost, tracing_was_on=was_on, started_by=started_by)


def ensure_tracing(lease: Lease, *, client: ManagementClient | None = None) -> bool:
    """Turn tracing back on after a broker restart (it does not persist). True if it was off."""
    client = client or runtime().management_client
    if client.vhost(lease.vhost).tracing or access.read_only():
        return False
    _set_tracing(
        client, lease.vhost, enabled=True, by=lease.started_by, reason="put back after it went off"
    )
    return True


def heartbeat(lease: Lease) -> None:
    from flows.models import TapFirehoseLease

    close_old_connections()
    TapFirehoseLease.objects.filter(id=lease.id).update(heartbeat_at=timezone.now())


def release_lease(lease: Lease, *, client: ManagementClient | None = None) -> None:
    """Forget the lease; the last tap on the vhost puts tracing back as it found it."""
    from flows.models import TapFirehoseLease

    client = client or runtime().management_client
    close_old_connections()
    with transaction.atomic():
        TapFirehoseLease.objects.filter(id=lease.id).delete()
        others = TapFirehoseLease.objects.filter(vhost=lease.vhost).exists()
    if not others and not lease.tracing_was_on:
        _set_tracing(
            client, lease.vhost, enabled=False, by=lease.started_by, reason="firehose tap stopped"
        )
        LOGGER.info("switched tracing off again for vhost %r", lease.vhost)
