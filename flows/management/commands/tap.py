"""`manage.py tap`: run the taps in a process of their own, behind a Redis channel layer.

Web processes (with `CHANNEL_LAYER_URL=redis://...`) send viewers' joins, heartbeats and
leaves to the control channel; this process starts a tap for each watched vhost and
sends its batches to the vhost's group, exactly as the in-process tap would. SIGTERM and
SIGINT stop the process's runtime (`flows.runtime`): every tap's queue goes and tracing is
put back as it was. As it starts, it tells every viewer of an earlier tap process
(`tap.process_started` to `viewers_group()`): they join again at once, and tell their
users of the gap (`flows.tap.viewer`).

`manage.py serve` starts this process itself, and restarts it when it dies, whenever the
channel layer is Redis. A deployment that runs it on its own (another container, a service
manager) serves with `manage.py serve --tap-elsewhere` and runs one `manage.py tap` per
control channel (`FLOWS_TAP_CONTROL_CHANNEL`).

`manage.py tap --restore-tracing` only puts back the tracing state of vhosts whose
firehose tap died (kill -9) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from django.core.management.base import BaseCommand, CommandError

from flows.tap.groups import control_channel, viewers_group
from flows.tap.selection import Selection
from flows.tap.viewer import VIEWER_EXPIRY_S


class Command(BaseCommand):
    help = "Run the message taps as their own process (needs a Redis channel layer)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--restore-tracing",
            action="store_true",
            help="Restore the tracing state left behind by firehose taps that died, then exit.",
        )

    def handle(self, *args, restore_tracing: bool = False, **options) -> None:
        from flows.broker.errors import BrokerError
        from flows.tap.firehose import restore_stale_leases

        if restore_tracing:
            try:
                restored = restore_stale_leases()
            except BrokerError as exc:
                raise CommandError(exc.message) from exc
            if restored:
                self.stdout.write("Restored tracing on: " + ", ".join(map(repr, restored)))
            else:
                self.stdout.write("No tracing state to restore.")
            return
        from django.conf import settings

        if settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer"):
            raise CommandError(
                "manage.py tap needs a shared channel layer: set CHANNEL_LAYER_URL=redis://... "
                "(with the in-memory layer, the tap runs inside the web process)."
            )
        try:
            restore_stale_leases()
        except BrokerError as exc:
            self.stderr.write(f"Could not restore tracing left by a dead tap: {exc.message}")
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from flows.runtime import runtime

        manager = runtime().tap_manager()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        layer = manager.layer
        assert layer is not None  # handle() refused to run without a shared channel layer
        try:
            # Before reading the control channel: the joins this prompts come after it.
            await layer.group_send(
                viewers_group(), {"type": "tap.process_started", "process": manager.process_id}
            )
        except Exception as exc:  # their heartbeats bring them back too, within seconds
            self.stderr.write(f"could not tell viewers this tap process started: {exc!r}")
        receiver = asyncio.create_task(self._receive(layer, manager))
        expirer = asyncio.create_task(self._expire(manager))
        self.stdout.write("tap process ready", ending="\n")
        self.stdout.flush()
        stopped = asyncio.create_task(stop.wait())
        try:
            # The control channel lost (Redis gone): a process no viewer reaches is of no
            # use, so it ends, and `serve` starts another.
            await asyncio.wait({stopped, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiver, expirer, stopped):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # The taps first (their queues go, tracing is restored), then the rest.
            await runtime().astop()
        if not stop.is_set():
            failure = receiver.exception() if not receiver.cancelled() else None
            raise CommandError(f"tap process stopped: its control channel failed: {failure!r}")
        self.stdout.write("tap process stopped")

    async def _receive(self, layer, manager) -> None:
        while True:
            message = await layer.receive(control_channel())
            try:
                await self._dispatch(manager, message)
            except Exception as exc:  # one bad message must not stop every tap
                self.stderr.write(f"tap control message failed: {exc!r}")

    @staticmethod
    async def _dispatch(manager, message: dict) -> None:
        kind = message.get("type")
        vhost = str(message.get("vhost") or "/")
        viewer = str(message.get("viewer") or "")
        if not viewer:
            return
        options = {
            "mode": str(message.get("mode") or "auto"),
            "firehose_allowed": bool(message.get("firehose_allowed")),
            "started_by": str(message.get("started_by") or ""),
            "selection": Selection.from_message(message.get("selection")),
        }
        if kind == "tap.join":
            await manager.join(vhost, viewer, **options)
        elif kind == "tap.heartbeat":
            await manager.touch(vhost, viewer, **options)
        elif kind == "tap.leave":
            await manager.leave(vhost, viewer)

    @staticmethod
    async def _expire(manager) -> None:
        while True:
            await asyncio.sleep(VIEWER_EXPIRY_S / 4)
            await manager.expire(VIEWER_EXPIRY_S)
