"""Loading a scenario into a vhost, and unloading exactly what the load created.

A scenario goes into its own vhost (`demo-<name>` unless told otherwise). If the vhost does
not exist, loading creates it and grants the dashboard's broker users (the management-API
user and the AMQP user) every permission on it, and unloading deletes it. If it exists, its
contents stay the vhost's: a scenario whose exchange or queue names are already taken there
is refused before anything changes (its workers would otherwise consume someone else's
messages), and unloading removes only the scenario's own exchanges and queues (their bindings
go with them) and the permissions the load granted.

What a load creates is written to a `DemoLoad` row *before* the first change, so a crash
halfway leaves a record that `unload` works from; a load that fails halfway undoes itself.
Everything here does blocking I/O (management API, database): call it from a thread or a
command, never from the event loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from flows.broker.amqp import amqp_username
from flows.broker.errors import BrokerError, BrokerNotFound, BrokerRefused
from flows.broker.management_api import ManagementClient
from flows.demo.scenario import BindingSpec, ExchangeSpec, QueueSpec, Scenario
from flows.models import DemoLoad
from flows.runtime import runtime

LOGGER = logging.getLogger(__name__)


class LoadRefused(Exception):
    """The scenario cannot be loaded there; nothing was changed. The message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Outcome:
    """The scenario loaded or unloaded, the exchanges and queues declared or removed, where."""

    scenario: str
    exchanges: tuple[str, ...]
    queues: tuple[str, ...]
    vhost: str


@dataclass(frozen=True)
class LoadResult(_Outcome):
    created_vhost: bool
    granted_users: tuple[str, ...]
    bindings: int
    already_loaded: bool = False

    def describe(self) -> str:
        if self.already_loaded:
            return f"{self.scenario!r} is already loaded in vhost {self.vhost!r}"
        where = "new vhost" if self.created_vhost else "vhost"
        granted = (
            f"; granted permissions to {', '.join(self.granted_users)}"
            if self.granted_users
            else ""
        )
        return (
            f"loaded {self.scenario!r} into {where} {self.vhost!r}: "
            f"{len(self.exchanges)} exchanges, {len(self.queues)} queues, "
            f"{self.bindings} bindings{granted}"
        )


@dataclass(frozen=True)
class UnloadResult(_Outcome):
    deleted_vhost: bool
    revoked_users: tuple[str, ...]

    def describe(self) -> str:
        if self.deleted_vhost:
            return f"unloaded {self.scenario!r}: deleted vhost {self.vhost!r}, which it created"
        revoked = (
            f"; revoked the permissions it granted to {', '.join(self.revoked_users)}"
            if self.revoked_users
            else ""
        )
        return (
            f"unloaded {self.scenario!r} from vhost {self.vhost!r}: removed "
            f"{len(self.exchanges)} exchanges and {len(self.queues)} queues{revoked}"
        )


def dashboard_users() -> list[str]:
    """The broker users the dashboard acts as: a demo vhost must let both in."""
    return sorted({settings.RABBITMQ_API_USER, amqp_username()})


def vhost_description(scenario: Scenario) -> str:
    return f"demo scenario {scenario.name!r} ({scenario.title}), loaded by the flows dashboard"


def find_load(scenario: str, vhost: str) -> DemoLoad | None:
    return DemoLoad.objects.filter(scenario=scenario, vhost=vhost).first()


def loads() -> list[DemoLoad]:
    return list(DemoLoad.objects.order_by("scenario", "vhost"))


# --- the record ---------------------------------------------------------------------------------


def _declared(scenario: Scenario) -> dict[str, list[dict[str, Any]]]:
    return {
        "exchanges": [dataclasses.asdict(e) for e in scenario.exchanges],
        "queues": [dataclasses.asdict(q) for q in scenario.queues],
        "bindings": [dataclasses.asdict(b) for b in scenario.bindings],
    }


def _exchanges(record: DemoLoad) -> list[ExchangeSpec]:
    return [ExchangeSpec(**item) for item in record.declared.get("exchanges", [])]


def _queues(record: DemoLoad) -> list[QueueSpec]:
    return [QueueSpec(**item) for item in record.declared.get("queues", [])]


def _bindings(record: DemoLoad) -> list[BindingSpec]:
    return [BindingSpec(**item) for item in record.declared.get("bindings", [])]


# --- loading ------------------------------------------------------------------------------------


def load(
    scenario: Scenario, *, vhost: str | None = None, client: ManagementClient | None = None
) -> LoadResult:
    """Declare the scenario's objects in `vhost` (default `demo-<name>`); see the module doc.

    Raises LoadRefused (nothing changed) or BrokerError (the broker failed halfway: what was
    declared has been removed again, or, if even that failed, is recorded for `unload`).
    """
    client = client or runtime().management_client
    vhost = vhost or scenario.default_vhost()
    record = find_load(scenario.name, vhost)
    already_loaded = record is not None and record.complete
    if record is None:
        record = _plan(scenario, vhost, client)
    try:
        # Declaring is idempotent: loading again puts back what someone removed since, and
        # finishes a load that crashed halfway.
        _apply(record, scenario, client)
    except BrokerError:
        if not already_loaded:
            _undo(record, client)
        raise
    record.complete = True
    record.save(update_fields=["complete", "granted_users"])
    return _result(record, already_loaded=already_loaded)


def _undo(record: DemoLoad, client: ManagementClient) -> None:
    LOGGER.warning("loading %r into %r failed; undoing it", record.scenario, record.vhost)
    try:
        _remove(record, client)
    except BrokerError:
        LOGGER.warning("undoing the load of %r failed; `demo unload` will retry", record.vhost)
    else:
        record.delete()


def _plan(scenario: Scenario, vhost: str, client: ManagementClient) -> DemoLoad:
    """Check that the load can go ahead and write down what it will create."""
    try:
        client.vhost(vhost)
    except BrokerNotFound:
        exists = False
    else:
        exists = True
    to_grant: list[str] = []
    if exists:
        taken = _taken_names(scenario, vhost, client)
        if taken:
            raise LoadRefused(
                f"vhost {vhost!r} already has {', '.join(taken)}: the scenario would share "
                "them (and its workers would consume their messages). Load it into another "
                "vhost."
            )
        to_grant = _users_without_permissions(vhost, client)
    try:
        with transaction.atomic():
            return DemoLoad.objects.create(
                vhost=vhost,
                scenario=scenario.name,
                created_vhost=not exists,
                granted_users=to_grant,
                declared=_declared(scenario),
            )
    except IntegrityError as exc:
        raise LoadRefused(f"{scenario.name!r} is being loaded into {vhost!r} already") from exc


def _taken_names(scenario: Scenario, vhost: str, client: ManagementClient) -> list[str]:
    taken = [
        f"an exchange {e.name!r}"
        for e in scenario.exchanges
        if client.find_exchange(vhost, e.name) is not None
    ]
    taken += [
        f"a queue {q.name!r}"
        for q in scenario.queues
        if client.find_queue(vhost, q.name) is not None
    ]
    return taken


def _users_without_permissions(vhost: str, client: ManagementClient) -> list[str]:
    missing = []
    for user in dashboard_users():
        try:
            if client.user_permissions(vhost, user) is None:
                missing.append(user)
        except BrokerRefused:
            # Reading permissions takes the administrator tag, and so does granting them:
            # without it the vhost's administrator has to, and the declares will say so.
            return []
    return missing


def _apply(record: DemoLoad, scenario: Scenario, client: ManagementClient) -> None:
    vhost = record.vhost
    if record.created_vhost:
        try:
            client.declare_vhost(vhost, description=vhost_description(scenario))
        except BrokerRefused as exc:
            record.delete()
            raise LoadRefused(
                f"vhost {vhost!r} does not exist and broker user {client.username!r} may not "
                "create it (that takes the administrator tag): create it, or load into an "
                "existing vhost"
            ) from exc
        for user in dashboard_users():
            client.grant_permissions(vhost, user)
    for user in list(record.granted_users):
        try:
            client.grant_permissions(vhost, user)
        except BrokerRefused:
            LOGGER.info("may not grant %r permissions on %r", user, vhost)
            record.granted_users.remove(user)
            record.save(update_fields=["granted_users"])
    for exchange in _exchanges(record):
        settings = _settings(exchange, "name", "type")
        client.declare_exchange(vhost, exchange.name, exchange_type=exchange.type, **settings)
    for queue in _queues(record):
        client.declare_queue(vhost, queue.name, **_settings(queue, "name"))
    for binding in _bindings(record):
        settings = _settings(binding, "source", "destination")
        client.bind(vhost, binding.source, binding.destination, **settings)


def _settings(spec: ExchangeSpec | QueueSpec | BindingSpec, *names: str) -> dict[str, Any]:
    """The spec's fields but `names`, as keywords: the client's are named as the fields are."""
    fields = dataclasses.fields(spec)
    return {f.name: getattr(spec, f.name) for f in fields if f.name not in names}


def _result(record: DemoLoad, *, already_loaded: bool = False) -> LoadResult:
    return LoadResult(
        scenario=record.scenario,
        vhost=record.vhost,
        created_vhost=record.created_vhost,
        granted_users=tuple(record.granted_users),
        exchanges=tuple(e.name for e in _exchanges(record)),
        queues=tuple(q.name for q in _queues(record)),
        bindings=len(_bindings(record)),
        already_loaded=already_loaded,
    )


# --- unloading ----------------------------------------------------------------------------------


def unload(
    scenario: str, *, vhost: str, client: ManagementClient | None = None
) -> UnloadResult | None:
    """Remove what loading `scenario` into `vhost` created; None if nothing is recorded."""
    client = client or runtime().management_client
    record = find_load(scenario, vhost)
    if record is None:
        return None
    _remove(record, client)
    result = UnloadResult(
        scenario=record.scenario,
        vhost=record.vhost,
        deleted_vhost=record.created_vhost,
        exchanges=tuple(e.name for e in _exchanges(record)),
        queues=tuple(q.name for q in _queues(record)),
        revoked_users=tuple(record.granted_users),
    )
    record.delete()
    return result


def _remove(record: DemoLoad, client: ManagementClient) -> None:
    """Idempotent: what is already gone is skipped, so a second try finishes the first."""
    vhost = record.vhost
    if record.created_vhost:
        _ignoring_absent(client.remove_vhost, [vhost])
        return
    # Removing a queue or an exchange removes its bindings: every binding of a scenario has
    # one end of its own (the scenario's validator sees to that).
    _ignoring_absent(
        lambda name: client.remove_queue(vhost, name), [q.name for q in _queues(record)]
    )
    _ignoring_absent(
        lambda name: client.remove_exchange(vhost, name), [e.name for e in _exchanges(record)]
    )
    _ignoring_absent(lambda user: client.revoke_permissions(vhost, user), record.granted_users)


def _ignoring_absent(remove: Callable[[str], None], names: Iterable[str]) -> None:
    for name in names:
        with contextlib.suppress(BrokerNotFound):
            remove(name)
