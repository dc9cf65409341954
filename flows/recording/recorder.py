"""The recorder: joins a vhost's tap like a viewer does, and writes what it sees in batches.

One `Recorder` task per running recording, on the event loop the tap manager serves on (the
web process's, or `manage.py record`'s own). It joins with the firehose when the recording's
creator may choose it (so deliveries are recorded too), else `auto`; it writes a batch about
every `FLUSH_INTERVAL_S` off the event loop (`database_sync_to_async`), and leaves the tap
when the recording is over: stopped (by anyone, from any process: the state in the database
is what it reads), expired, full, or the runtime stopping. Leaving is what lets the tap, and
its queue, go when nobody else watches.

`Recorders` is the runtime member (`flows.runtime`) holding the tasks, so they stop with the
dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from flows.recording import store
from flows.tap.events import TapEvent, prettify
from flows.tap.modes import TapMode

if TYPE_CHECKING:
    from flows.tap.viewer import TapTicket

LOGGER = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 1.0
MAX_PENDING_EVENTS = 1000


class Recorder:
    def __init__(self, recording_id: int, vhost: str, user: Any) -> None:
        self.recording_id = recording_id
        self.vhost = vhost
        self.user = user
        self.state = "starting"

    async def run(self) -> None:
        from channels.db import database_sync_to_async
        from channels.layers import get_channel_layer

        from flows.tap.firehose import user_may_choose_firehose
        from flows.tap.viewer import TapRefused, join_tap, leave_tap

        layer: Any = get_channel_layer()
        member = SimpleNamespace(channel_layer=layer, channel_name=await layer.new_channel())
        firehose = await database_sync_to_async(user_may_choose_firehose)(self.user, self.vhost)
        mode: TapMode = "firehose" if firehose else "auto"
        try:
            ticket = await join_tap(member, self.vhost, self.user, mode)
        except TapRefused as refused:
            await database_sync_to_async(store.fail)(self.recording_id, refused.message)
            self.state = store.Recording.FAILED
            return
        except Exception as failed:  # the broker, the channel layer: said on the recording
            LOGGER.exception("recording %s could not join the tap", self.recording_id)
            message = f"could not join the tap: {failed}"
            await database_sync_to_async(store.fail)(self.recording_id, message)
            self.state = store.Recording.FAILED
            return
        self.state = store.Recording.RUNNING
        try:
            await self._record(ticket)
        except asyncio.CancelledError:
            await asyncio.shield(
                database_sync_to_async(store.stop)(self.recording_id, user="the dashboard stopping")
            )
            raise
        except Exception as failed:
            LOGGER.exception("recording %s of %r failed", self.recording_id, self.vhost)
            await database_sync_to_async(store.fail)(self.recording_id, str(failed))
        finally:
            await asyncio.shield(leave_tap(ticket))

    async def _record(self, ticket: TapTicket) -> None:
        from channels.db import database_sync_to_async

        from flows.tap.viewer import rejoin_tap

        layer, channel = ticket.layer, ticket.channel_name
        loop = asyncio.get_running_loop()
        mode_saved = False
        while True:
            pending: list[TapEvent] = []
            flush_at = loop.time() + FLUSH_INTERVAL_S
            while len(pending) < MAX_PENDING_EVENTS and (left := flush_at - loop.time()) > 0:
                try:
                    message = await asyncio.wait_for(layer.receive(channel), timeout=left)
                except TimeoutError:
                    break
                if message.get("type") == "tap.batch":
                    pending.extend(message.get("events") or [])
                elif message.get("type") == "tap.process_started":
                    await rejoin_tap(ticket)  # the tap process restarted: record again at once
                status = message.get("status") or {}
                if not mode_saved and status.get("mode"):
                    mode_saved = True
                    await database_sync_to_async(store.set_mode)(
                        self.recording_id, str(status["mode"])
                    )
            outcome = await database_sync_to_async(store.append)(
                self.recording_id, [prettify(event) for event in pending]
            )
            if outcome.state != store.Recording.RUNNING:
                self.state = outcome.state
                LOGGER.info("recording %s of %r: %s", self.recording_id, self.vhost, outcome.state)
                return


class Recorders:
    """The running recorders of this process, on one event loop."""

    def __init__(self) -> None:
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, recording_id: int, vhost: str, user: Any) -> asyncio.Task[None]:
        """Start recording (from a coroutine on the tap manager's loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("the recorders are bound to another event loop")
        recorder = Recorder(recording_id, vhost, user)
        # A context of its own: started from a request, the task would otherwise keep that
        # request's (asgiref's executor for its sync calls, which ends with the request).
        task = asyncio.create_task(
            recorder.run(), name=f"recording {recording_id}", context=contextvars.Context()
        )
        self._tasks[recording_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(recording_id, None))
        return task

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def running(self) -> list[int]:
        return list(self._tasks)

    async def astop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def stop(self, timeout_s: float) -> None:
        """From a thread other than the loop's: stop there, while the loop still runs."""
        loop = self._loop
        if loop is None or not self._tasks:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self.astop(), loop)
            try:
                future.result(timeout_s)
            except Exception:
                LOGGER.exception("stopping the recorders failed")
