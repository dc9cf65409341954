"""The process's state, with one owner: everything that lives as long as the process does.

A web process (daphne) or `manage.py tap` holds, once each: the management-API client, the
topology snapshot cache, the publisher threads with their repeat runs, the recorders of
recordings, the demo scenarios' runs started from the scenario pages, the moves of
dead-lettered messages, the idempotency keys of submitted forms, what the firehose saw (for
the publish page), the consumption histories, and the tap manager of the event loop it serves
on. (The idempotency keys' answers and the repeat runs' status live in Django's cache, which
several web workers share when it is Redis: `flows.publishing.runs`.) Each is an instance
of its own module's class; `Runtime` makes each on first use, and
`stop()` stops them all in an order that lets each clean up after itself: the recorders
first (they leave their taps, as viewers do), then the taps (they restore tracing through the
management client and delete their queues), then the moves of dead letters (cancelled
between two messages), the demo runs, the publishers (repeat runs cancelled, connections
closed), the cache's worker threads, and the management client last.

`runtime()` is the one way to reach them. `start()` (from `FlowsConfig.ready`) arms the
last-resort stop at interpreter exit; each entry point also stops the runtime on its own
shutdown path, while its event loop still runs: `stop_before_daphne_shuts_down()` in the
web process, the signal handlers of `manage.py tap`. Stopping may happen more than once:
each stop ends what is held at that moment and forgets it, so what is used afterwards starts
afresh (and is stopped by the next stop).
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

if TYPE_CHECKING:
    from flows.broker.management_api import ManagementClient
    from flows.dead_letters.moving import MessageMoves
    from flows.demo.service import DemoRuns
    from flows.live.consumption import QueueHistories
    from flows.publishing.publisher import Publishers
    from flows.publishing.service import IdempotentPublishes
    from flows.recording.recorder import Recorders
    from flows.tap.manager import TapManager
    from flows.tap.observe import FirehoseObservations
    from flows.topology.cache import TopologyCache

LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

# How long one stop may wait for each part (a tap restoring tracing, a publisher's thread).
STOP_TIMEOUT_S = 15.0


class Member(Generic[T]):
    """A `Runtime` attribute: the member its factory makes on first use, once per runtime.

    The factory is named `module:attribute.path` (the module below `flows`) and imported only
    then, so that any module may import this one without importing every member's module.
    """

    def __init__(self, factory: str) -> None:
        self.factory = factory
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, runtime: None, owner: type) -> Member[T]: ...
    @overload
    def __get__(self, runtime: Runtime, owner: type | None = None) -> T: ...
    def __get__(self, runtime: Runtime | None, owner: type | None = None) -> T | Member[T]:
        if runtime is None:  # looked up on the class (help(), introspection)
            return self
        return runtime._member(self.name, self._make)

    def _make(self) -> T:
        module_name, _, path = self.factory.partition(":")
        factory: Any = importlib.import_module(f"flows.{module_name}")
        for attribute in path.split("."):
            factory = getattr(factory, attribute)
        return cast(T, factory())


class Runtime:
    """Every piece of process-wide state, made on first use and stopped together.

    The members' modules are imported when first used, so any module may import this one.
    """

    def __init__(self) -> None:
        # Reentrant: a member's factory may itself ask for another member (made under the lock).
        self._lock = threading.RLock()
        self._started = False
        self._members: dict[str, object] = {}  # attribute name -> member, as made so far
        self._tap_manager: TapManager | None = None
        self._tap_loop: asyncio.AbstractEventLoop | None = None

    # --- lifetime -------------------------------------------------------------------------------

    def start(self) -> Runtime:
        """Arm the stop at interpreter exit, the last resort when no shutdown path ran."""
        with self._lock:
            if not self._started:
                self._started = True
                atexit.register(self.stop)
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop everything held, from any thread except a running tap manager's loop's own.

        The tap manager stops on its loop when that loop still runs in another thread, and
        by stopping its tap threads directly when the loop has ended (interpreter exit).
        """
        with self._lock:
            tap_loop = self._tap_loop
        if tap_loop is not None and tap_loop.is_running() and _running_loop() is tap_loop:
            raise RuntimeError("Runtime.stop() on the tap manager's loop: await astop()")
        recorders = self._take_recorders()
        if recorders is not None:  # before the taps: they leave them, as viewers do
            recorders.stop(timeout_s)
        manager, loop = self._take_tap_manager()
        if manager is not None and loop is not None:
            _stop_taps_from_outside(manager, loop, timeout_s)
        self._stop_threads(timeout_s)

    async def astop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """`stop()` from a coroutine: the taps of this loop stop on it, the rest in a thread."""
        recorders = self._take_recorders()
        if recorders is not None:  # before the taps: they leave them, as viewers do
            if recorders.loop is asyncio.get_running_loop():
                await recorders.astop()
            else:
                await asyncio.to_thread(recorders.stop, timeout_s)
        manager, loop = self._take_tap_manager()
        if manager is not None and loop is not None:
            if loop is asyncio.get_running_loop():
                await manager.stop_all()
            else:
                await asyncio.to_thread(_stop_taps_from_outside, manager, loop, timeout_s)
        await asyncio.to_thread(self._stop_threads, timeout_s)

    def _take_recorders(self) -> Recorders | None:
        with self._lock:
            return cast("Recorders | None", self._members.pop("recorders", None))

    def _take_tap_manager(self) -> tuple[TapManager | None, asyncio.AbstractEventLoop | None]:
        with self._lock:
            taken = self._tap_manager, self._tap_loop
            self._tap_manager = self._tap_loop = None
        return taken

    def _stop_threads(self, timeout_s: float) -> None:
        """Everything but the taps: the demo runs, the publishers, the cache's workers, the
        client last."""
        with self._lock:
            members, self._members = self._members, {}
        moves = members.get("message_moves")
        if moves is not None:  # cancelled between two messages: nothing lost, none doubled
            cast("MessageMoves", moves).stop(timeout_s)
        demo_runs = members.get("demo_runs")
        if demo_runs is not None:
            cast("DemoRuns", demo_runs).stop(timeout_s)
        publishers = members.get("publishers")
        if publishers is not None:
            cast("Publishers", publishers).stop(timeout_s)
        cache = members.get("topology_cache")
        if cache is not None:
            cast("TopologyCache", cache).close()
        client = members.get("management_client")
        if client is not None:
            cast("ManagementClient", client).close()

    # --- the members ----------------------------------------------------------------------------

    def _member(self, name: str, make: Callable[[], T]) -> T:
        """The member `name` (its attribute's), made by `make()` on first use."""
        with self._lock:
            if name not in self._members:
                self._members[name] = make()
            return cast(T, self._members[name])

    # The client every read of the broker's state, and every change through its API, uses.
    management_client: Member[ManagementClient] = Member(
        "broker.management_api:ManagementClient.from_settings"
    )
    # The one topology snapshot cache every page reads vhosts through.
    topology_cache: Member[TopologyCache] = Member("topology.cache:TopologyCache")
    # The publisher thread of each vhost published to, and the repeat runs given them (their
    # status and cancel requests shared with the other workers: flows/publishing/runs.py).
    publishers: Member[Publishers] = Member("publishing.publisher:Publishers")
    # The demo scenarios' publishers and workers started from the scenario pages.
    demo_runs: Member[DemoRuns] = Member("demo.service:DemoRuns")
    # The moves of dead-lettered messages started from the dead-letters page.
    message_moves: Member[MessageMoves] = Member("dead_letters.moving:MessageMoves")
    # The answers to submitted forms, so a form submitted twice publishes once (kept in the
    # cache the web workers share).
    idempotent_publishes: Member[IdempotentPublishes] = Member(
        "publishing.service:IdempotentPublishes"
    )
    # What this process's firehose taps saw routed, for the publish page to show.
    firehose_observations: Member[FirehoseObservations] = Member("tap.observe:FirehoseObservations")
    # The recordings this process records (each a viewer of its vhost's tap); stopped first.
    recorders: Member[Recorders] = Member("recording.recorder:Recorders")
    # The queue depths sampled for the consumption panel's sparklines.
    queue_histories: Member[QueueHistories] = Member("live.consumption:QueueHistories")

    def tap_manager(self) -> TapManager:
        """The tap manager of the event loop this process serves on; call it from that loop.

        Made on first use and bound to the loop it was first asked from: its tasks and locks,
        and the taps' hand-off of batches (`call_soon_threadsafe`), belong to that loop. Asking
        from another loop is a mistake, refused, until a stop unbinds it.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._tap_manager is None:
                from flows.tap.manager import TapManager

                self._tap_manager = TapManager()
                self._tap_loop = loop
            elif self._tap_loop is not loop:
                raise RuntimeError("the tap manager is bound to another event loop")
            return self._tap_manager


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _stop_taps_from_outside(
    manager: TapManager, loop: asyncio.AbstractEventLoop, timeout_s: float
) -> None:
    """Stop the manager's taps from a thread other than its loop's."""
    if loop.is_running():
        # The loop still forwards batches: stop there, so viewers get the last status.
        future = asyncio.run_coroutine_threadsafe(manager.stop_all(), loop)
        try:
            future.result(timeout_s)
            return
        except Exception:
            LOGGER.exception("stopping the taps on their loop failed: stopping their threads")
    manager.stop_all_blocking()


_runtime = Runtime()


def runtime() -> Runtime:
    """This process's runtime: the one way to reach process-wide state."""
    return _runtime


def stop_before_daphne_shuts_down() -> None:
    """In daphne's process: stop the runtime before the server shuts down.

    daphne runs Twisted's asyncio reactor, whose SIGTERM and SIGINT handlers call
    `reactor.stop()`. Its "before shutdown" triggers run while the event loop still runs, and
    the reactor waits for the Deferred each one returns before going on: so the taps stop on
    their own loop and tracing is restored before the process exits. Without a Twisted
    reactor (another ASGI server) this does nothing, and the stop at interpreter exit remains.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:  # importing it here would install a reactor daphne did not choose
        return
    from twisted.internet import defer

    def before_shutdown() -> defer.Deferred[None]:
        LOGGER.info("the server is shutting down: stopping taps and publishers")
        return defer.Deferred.fromFuture(asyncio.ensure_future(runtime().astop()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


__all__ = ["Runtime", "runtime", "stop_before_daphne_shuts_down"]
