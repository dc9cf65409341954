"""A websocket client for `/ws/tap/` tests: signed in with a real session cookie."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.waiting import StopWaiting, eventually_async


def session_cookie(user) -> str:
    """A session for `user` in the test database, as the browser would carry it."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def tap_url(base_url: str, **params: Any) -> str:
    query = urlencode({"format": "json", **params})
    return base_url.replace("http://", "ws://") + "/ws/tap/?" + query


def open_tap(base_url: str, cookie: str | None, *, origin: str | None = None, **params: Any):
    headers = {"Cookie": cookie} if cookie else {}
    return connect(
        tap_url(base_url, **params),
        origin=origin or base_url,
        additional_headers=headers,
        max_size=None,
        open_timeout=10,
    )


def open_slow_tap(base_url: str, cookie: str, **params: Any):
    """`open_tap` for a client that reads only when the test says so: it buffers one message
    and a small socket buffer, so once the test stops calling `recv` the server's side backs
    up within a few megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    port = int(urlsplit(base_url).port or 80)
    sock.connect(("127.0.0.1", port))
    return connect(
        tap_url(base_url, **params),
        origin=base_url,
        additional_headers={"Cookie": cookie},
        max_size=None,
        max_queue=1,
        open_timeout=10,
        sock=sock,
    )


async def receive_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def receive_until(ws: ClientConnection, predicate, timeout: float = 30.0) -> list[dict]:
    """Every message up to and including the first one `predicate` accepts."""
    seen: list[dict] = []

    async def next_is_wanted() -> bool:
        try:
            message = json.loads(await ws.recv())
        except ConnectionClosed as closed:
            raise StopWaiting(f"the websocket closed; last messages: {seen[-3:]}") from closed
        seen.append(message)
        assert predicate(message), f"last messages: {seen[-3:]}"
        return True

    await eventually_async(
        next_is_wanted,
        what=f"a websocket message that {getattr(predicate, '__name__', 'matches')} accepts",
        timeout=timeout,
        interval=0,
    )
    return seen


def is_running(message: dict) -> bool:
    status = message.get("status")
    return message.get("type") == "status" and (status or {}).get("state") == "running"


def is_batch_with_events(message: dict) -> bool:
    return message.get("type") == "batch" and bool(message.get("events"))


def watch(
    base_url: str,
    cookie: str,
    *,
    vhost: str,
    act: Callable[[], None],
    until: Callable[[dict], bool] = is_batch_with_events,
    **params: Any,
) -> list[dict]:
    """Open `/ws/tap/`; once the tap runs, `act()` (publish, say); then every message up to
    and including the first one `until` accepts."""

    async def scenario() -> list[dict]:
        async with open_tap(base_url, cookie, vhost=vhost, **params) as ws:
            await receive_until(ws, is_running)
            act()
            return await receive_until(ws, until)

    return run_async(scenario)


def run_async(coroutine_function, *args: Any) -> Any:
    """`asyncio.run` on a thread of its own.

    Playwright's sync API (browser tests, earlier in the session) leaves an event loop
    running on the main thread, where `asyncio.run` refuses to start.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine_function(*args))
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
