"""What the scenario pages do: list, load, unload, and run a scenario from the dashboard.

The views, like `manage.py demo`, only call these. Whoever may publish may load, unload and
run a scenario (`flows.publish_messages`; roles come later): a run publishes, and a load
declares, on the speaker's behalf. A refusal is a `DemoRefused` whose message a page shows.

The dashboard's running `DemoRun`s are held by one `DemoRuns`, owned by the process's
runtime, so they stop when the dashboard stops and none is left on the broker. Everything
here does blocking I/O (database, management API, AMQP): call it from a sync view or a thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from flows.broker.errors import BrokerError
from flows.demo.loading import LoadRefused, LoadResult, UnloadResult, find_load, load, unload
from flows.demo.run import JOIN_TIMEOUT_S, DemoRun, RunReport
from flows.demo.scenario import (
    Scenario,
    ScenarioInvalid,
    UnknownScenario,
    available_scenarios,
    load_scenario,
)
from flows.models import DemoLoad
from flows.publishing.policy import permission_refusal

# Whoever a request has: permissions decide, not the kind of user.
AnyUser = AbstractBaseUser | AnonymousUser


class DemoRefused(Exception):
    """The request cannot be done; nothing changed. The message says why, for a person."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.forbidden = forbidden  # the user may not; otherwise the state does not allow it


@dataclass(frozen=True)
class ScenarioEntry:
    """One scenario as the list shows it: where it is loaded, whether it runs there."""

    scenario: Scenario
    vhost: str
    loaded: bool
    running: bool


class DemoRuns:
    """The scenario runs started from the dashboard, one per (scenario, vhost)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], DemoRun] = {}

    def get(self, scenario: str, vhost: str) -> DemoRun | None:
        with self._lock:
            run = self._runs.get((scenario, vhost))
        return run if run is not None and run.running else None

    def start(self, scenario: Scenario, vhost: str) -> DemoRun:
        """The running run of `scenario` on `vhost`, started now if none runs."""
        with self._lock:
            run = self._runs.get((scenario.name, vhost))
            # Not stopped: running, or being started by another request right now.
            if run is not None and run.stopped_at is None:
                return run
            run = DemoRun(scenario, vhost=vhost)
            self._runs[(scenario.name, vhost)] = run
        run.start()
        return run

    def stop_run(self, scenario: str, vhost: str) -> RunReport | None:
        with self._lock:
            run = self._runs.pop((scenario, vhost), None)
        return run.stop() if run is not None else None

    def stop(self, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        """Stop every run (each joins its threads for at most `JOIN_TIMEOUT_S` apiece)."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            run.stop()


LOGGER = logging.getLogger(__name__)

# `manage.py serve --demo NAME` loads the scenario, then sets this ("NAME\nVHOST") for the
# daphne process it becomes, which starts the run once it serves.
START_DEMO_ENV = "FLOWS_START_DEMO"


def start_demo_from_environment() -> threading.Thread | None:
    """Start the run `serve --demo` asked for, in the background; None when none was asked.

    In a thread: a run's start waits for its workers to be consuming, which must not hold up
    the server's start. The variable is removed, so a process started from this one (a test
    run, a shell) does not start the run again.
    """
    wanted = os.environ.pop(START_DEMO_ENV, "")
    if not wanted:
        return None
    name, _, vhost = wanted.partition("\n")

    def start() -> None:
        try:
            demo_runs().start(load_scenario(name), vhost)
        except (BrokerError, ScenarioInvalid, UnknownScenario, OSError) as exc:
            LOGGER.error("could not start demo scenario %r in vhost %r: %s", name, vhost, exc)

    thread = threading.Thread(target=start, name=f"demo start {name}", daemon=True)
    thread.start()
    return thread


def demo_runs() -> DemoRuns:
    """The process's runs, held by its runtime (which stops them when the dashboard stops)."""
    from flows.runtime import runtime

    return runtime().demo_runs


# --- reading ----------------------------------------------------------------------------------


def loaded_record(scenario: Scenario, vhost: str) -> DemoLoad | None:
    record = find_load(scenario.name, vhost)
    return record if record is not None and record.complete else None


def scenario_entries() -> list[ScenarioEntry]:
    """Every scenario file that reads, each in its default vhost (loaded there or not)."""
    entries = []
    for name in available_scenarios():
        try:
            scenario = load_scenario(name)
        except ScenarioInvalid:
            continue  # `manage.py demo list` names its mistakes
        vhost = scenario.default_vhost()
        entries.append(
            ScenarioEntry(
                scenario=scenario,
                vhost=vhost,
                loaded=loaded_record(scenario, vhost) is not None,
                running=demo_runs().get(name, vhost) is not None,
            )
        )
    return entries


# --- changing ---------------------------------------------------------------------------------


def refusal(user: AnyUser) -> str | None:
    """Why `user` may not load, unload or run scenarios, or None when they may."""
    if permission_refusal(user) is None:
        return None
    return (
        "Your account may not load or run demo scenarios: that takes the “Can publish "
        "messages” permission (flows.publish_messages), which an administrator can grant."
    )


def _require_permission(user: AnyUser) -> None:
    reason = refusal(user)
    if reason:
        raise DemoRefused(reason, forbidden=True)


def load_for(user: AnyUser, scenario: Scenario, *, vhost: str | None = None) -> LoadResult:
    _require_permission(user)
    try:
        return load(scenario, vhost=vhost)
    except LoadRefused as exc:
        raise DemoRefused(exc.message) from exc
    except BrokerError as exc:
        raise DemoRefused(f"The broker refused the load: {exc}") from exc


def unload_for(user: AnyUser, scenario: Scenario, *, vhost: str) -> UnloadResult:
    """Stop the scenario's run there, then remove what its load created."""
    _require_permission(user)
    demo_runs().stop_run(scenario.name, vhost)
    try:
        result = unload(scenario.name, vhost=vhost)
    except BrokerError as exc:
        raise DemoRefused(f"The broker refused the unload: {exc}") from exc
    if result is None:
        raise DemoRefused(f"{scenario.name!r} is not loaded in vhost {vhost!r}.")
    return result


def running_for(user: AnyUser, scenario: Scenario, *, vhost: str) -> DemoRun:
    """The scenario's run there, for changing it; refused unless loaded and running."""
    _require_permission(user)
    run = demo_runs().get(scenario.name, vhost)
    if run is None:
        raise DemoRefused(f"{scenario.name!r} is not running in vhost {vhost!r}: start it first.")
    return run


def start_for(user: AnyUser, scenario: Scenario, *, vhost: str) -> DemoRun:
    _require_permission(user)
    if loaded_record(scenario, vhost) is None:
        raise DemoRefused(f"Load {scenario.name!r} into vhost {vhost!r} before starting it.")
    return demo_runs().start(scenario, vhost)


def stop_for(user: AnyUser, scenario: Scenario, *, vhost: str) -> RunReport | None:
    _require_permission(user)
    return demo_runs().stop_run(scenario.name, vhost)


def change_publisher(
    user: AnyUser, scenario: Scenario, *, vhost: str, name: str, action: str, rate: float | None
) -> None:
    """`action`: `start`, `stop`, or `set` (the rate, messages per second)."""
    run = running_for(user, scenario, vhost=vhost)
    with _refused_when_wrong():
        scenario.publisher(name)
        if rate is not None:
            run.set_rate(name, rate)
        if action == "start":
            run.start_publisher(name)
        elif action == "stop":
            run.stop_publisher(name)


def change_workers(
    user: AnyUser,
    scenario: Scenario,
    *,
    vhost: str,
    name: str,
    count: int | None = None,
    prefetch: int | None = None,
    failure_rate: float | None = None,
) -> None:
    run = running_for(user, scenario, vhost=vhost)
    with _refused_when_wrong():
        scenario.worker(name)
        if prefetch is not None:
            run.set_prefetch(name, prefetch)
        if failure_rate is not None:
            run.set_failure_rate(name, failure_rate)
        if count is not None:
            run.set_worker_count(name, count)


@contextmanager
def _refused_when_wrong() -> Iterator[None]:
    """A name the scenario lacks, or a value out of range, as a refusal the page shows."""
    try:
        yield
    except (LookupError, ValueError) as exc:
        # A KeyError's str() is its message in quotes.
        raise DemoRefused(str(exc.args[0]) if exc.args else str(exc)) from exc
