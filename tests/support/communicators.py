"""Channels' in-process websocket communicator on the dashboard's own URL table.

For tests of `/ws/live/` and `/ws/tap/` that need no served dashboard: an async test body run
on a loop of its own, a communicator for a path, and the frames it sends until one is wanted.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from flows.tap.manager import get_tap_manager
from flows.websockets.urls import websocket_urlpatterns
from tests.support.waiting import StopWaiting, eventually_async


def run_with_tap(test) -> None:
    """Run an async test body, then stop the taps it started (their threads would linger).

    In a thread of its own: after a browser test, Playwright's sync API keeps an event loop
    running in the main thread, where asyncio.run and async_to_sync refuse to start another.
    """

    async def runner():
        try:
            await test()
        finally:
            await get_tap_manager().stop_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, runner()).result()


def connect(path: str, user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    return communicator


async def frames_until(communicator, predicate, timeout: float = 30.0) -> list[str]:
    """Frames received until one satisfies `predicate` (that one included)."""
    frames: list[str] = []

    async def next_is_wanted() -> bool:
        try:
            # Cut off by eventually_async at its deadline (the communicator's own timeout, set
            # beyond it, would cancel the application).
            frames.append(await communicator.receive_from(timeout=timeout + 5))
        except Exception as failed:  # closed, or the application failed: no frame will come
            raise StopWaiting(f"no more frames after {frames[-3:]}") from failed
        assert predicate(frames[-1]), f"{len(frames)} frames, the last: {frames[-3:]}"
        return True

    await eventually_async(next_is_wanted, what="a matching frame", timeout=timeout, interval=0)
    return frames
