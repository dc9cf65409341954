"""`manage.py demo`: the talk's scenarios from the command line, for rehearsal and CI.

    demo list
    demo load NAME [--vhost V]
    demo unload NAME [--vhost V]
    demo run NAME [--seconds N] [--vhost V] [--keep]

`run` loads the scenario if it is not loaded, runs its publishers and workers for N seconds
(SIGINT or SIGTERM stops them early, cleanly), lets the workers finish what is queued, prints
what went where, and unloads the scenario again if it loaded it (`--keep` leaves it loaded).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

if TYPE_CHECKING:
    from flows.demo.run import RunReport
    from flows.demo.scenario import Scenario

DRAIN_S = 3.0


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` instead of killing the process; put back after."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_or_stop(stop: threading.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set.

    In short slices: the kernel may hand a signal to any thread (a pika worker's, say), and
    Python runs its handler only when the main thread next runs, not while it sleeps.
    """
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        stop.wait(min(left, 0.2))


class Command(BaseCommand):
    help = "List, load, unload or run the talk's demo scenarios."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("list", help="the scenarios, and where each is loaded")
        for action, text in (
            ("load", "declare the scenario's exchanges, queues and bindings"),
            ("unload", "remove exactly what loading the scenario created"),
            ("run", "run the scenario's publishers and workers, then print what went where"),
        ):
            sub = actions.add_parser(action, help=text)
            sub.add_argument("name", help="the scenario (see `demo list`)")
            sub.add_argument("--vhost", help="the vhost (default: demo-NAME)")
            if action == "run":
                sub.add_argument(
                    "--seconds", type=float, default=10.0, help="how long to run (default 10)"
                )
                sub.add_argument(
                    "--keep", action="store_true", help="leave the scenario loaded afterwards"
                )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        from flows import access
        from flows.broker.errors import BrokerError
        from flows.demo.loading import LoadRefused
        from flows.demo.scenario import ScenarioInvalid, UnknownScenario

        if action != "list" and access.read_only():
            raise CommandError(access.READ_ONLY)
        try:
            if action == "list":
                self._list()
            elif action == "load":
                self._load(options["name"], options["vhost"])
            elif action == "unload":
                self._unload(options["name"], options["vhost"])
            else:
                self._run(options["name"], options["vhost"], options["seconds"], options["keep"])
        except (UnknownScenario, ScenarioInvalid) as exc:
            raise CommandError(str(exc)) from exc
        except LoadRefused as exc:
            raise CommandError(exc.message) from exc
        except BrokerError as exc:
            raise CommandError(exc.message) from exc

    def _list(self) -> None:
        from flows.demo.loading import loads
        from flows.demo.scenario import ScenarioInvalid, available_scenarios, load_scenario

        where: dict[str, list[str]] = {}
        for record in loads():
            state = "" if record.complete else " (incomplete: unload it)"
            where.setdefault(record.scenario, []).append(f"{record.vhost}{state}")
        invalid = []
        for name in available_scenarios():
            try:
                scenario = load_scenario(name)
            except ScenarioInvalid as exc:
                invalid.append(name)
                self.stdout.write(f"{name:<10} INVALID ({exc.source}):")
                for problem in exc.problems:
                    self.stdout.write(f"             {problem}")
                continue
            loaded = ", ".join(where.get(name, [])) or "not loaded"
            self.stdout.write(f"{name:<10} {scenario.title}  [{loaded}]")
        if invalid:
            raise CommandError(f"invalid scenario files: {', '.join(invalid)}")

    def _load(self, name: str, vhost: str | None) -> None:
        from flows.demo.loading import load
        from flows.demo.scenario import load_scenario

        result = load(load_scenario(name), vhost=vhost)
        if not result.already_loaded:
            _audit("demo.load", result.vhost, name)
        self.stdout.write(result.describe())

    def _unload(self, name: str, vhost: str | None) -> None:
        from flows.demo.loading import unload
        from flows.demo.scenario import load_scenario

        vhost = vhost or load_scenario(name).default_vhost()
        result = unload(name, vhost=vhost)
        if result is None:
            self.stdout.write(f"{name!r} is not loaded in vhost {vhost!r}: nothing to unload")
        else:
            _audit("demo.unload", vhost, name)
            self.stdout.write(result.describe())

    def _run(self, name: str, vhost: str | None, seconds: float, keep: bool) -> None:
        from flows.demo.loading import load, unload
        from flows.demo.scenario import load_scenario

        if seconds < 0:
            raise CommandError("--seconds must be 0 or more")
        scenario = load_scenario(name)
        loaded = load(scenario, vhost=vhost)
        if not loaded.already_loaded:
            _audit("demo.load", loaded.vhost, name)
        self.stdout.write(loaded.describe())
        _audit("demo.run.start", loaded.vhost, name, seconds=seconds)
        try:
            report = self._run_loaded(scenario, loaded.vhost, seconds)
        finally:
            _audit("demo.run.stop", loaded.vhost, name)
            if not loaded.already_loaded and not keep:
                result = unload(scenario.name, vhost=loaded.vhost)
                if result is not None:
                    _audit("demo.unload", loaded.vhost, name)
                    self.stdout.write(result.describe())
        if report.errors:
            raise CommandError("some publishers or workers failed (see errors above)")

    def _run_loaded(self, scenario: Scenario, vhost: str, seconds: float) -> RunReport:
        from flows.demo.run import DemoRun
        from flows.demo.summary import format_report

        run = DemoRun(scenario, vhost=vhost)
        stop = threading.Event()
        with stop_on_signals(stop):
            try:
                run.start()
                self.stdout.write(f"running for {seconds:g} s (Ctrl-C stops it)")
                self.stdout.flush()
                wait_or_stop(stop, seconds)
            finally:
                report = run.stop(drain_s=DRAIN_S)
        self.stdout.write("")
        self.stdout.write(format_report(scenario, report), ending="")
        return report


def _audit(action: str, vhost: str, scenario: str, **details: Any) -> None:
    from flows import audit

    audit.record("manage.py demo", action, vhost=vhost, target=scenario, details=details)
