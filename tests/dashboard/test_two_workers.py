"""Two daphne workers behind one address, one `manage.py tap`: one dashboard to its users.

Every process has CHANNEL_LAYER_URL on Redis (so the cache is Redis too) and the same
database. What one worker starts, the other shows and stops: a repeat run started through
A's JSON API is watched live on B's websocket, read and cancelled through B, and A's run
ends; a form submitted on A and again on B publishes once; and either answers the topology
with the same ETag. Real processes, real broker, real Redis.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pika
import pytest

from tests.support.accounts import make_user
from tests.support.live_server import LiveDashboard, database_url_for
from tests.support.tap_harness import amqp_channel
from tests.support.tap_process import TapProcess, redis_env
from tests.support.tap_socket import is_running, open_tap, receive_until, run_async, session_cookie
from tests.support.topology_definitions import binding, declare, exchange
from tests.support.waiting import eventually_async

pytestmark = pytest.mark.usefixtures("transactional_db")

COPIES = 100_000  # far more than can go out before the cancel: at RATE, over half an hour
RATE = 50
IDEMPOTENCY_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f]+)"')


@pytest.fixture
def two_workers(
    django_db_setup, django_db_blocker, scratch_vhost: str, management_client
) -> Iterator[tuple[LiveDashboard, LiveDashboard]]:
    from django.db import connection

    declare(
        management_client,
        scratch_vhost,
        exchanges=[exchange("orders", "topic"), exchange("audit", "fanout")],
        bindings=[binding("orders", "audit", "#", to="exchange")],
    )
    with django_db_blocker.unblock():
        database_url = database_url_for(connection.settings_dict)
    # Every message to the viewer: the test counts them.
    env = redis_env(database_url, FLOWS_TAP_VIEWER_MAX_RATE="100000")
    tap = TapProcess(env)
    workers: list[LiveDashboard] = []
    try:
        workers += [LiveDashboard(database_url=database_url, env=env).start() for _ in "AB"]
        yield workers[0], workers[1]
    finally:
        for worker in workers:
            worker.stop()
        tap.stop()


def message_ids(messages: list[dict]) -> list[str]:
    return [
        (event.get("properties") or {}).get("message_id") or ""
        for message in messages
        if message.get("type") == "batch"
        for event in message["events"]
    ]


def test_two_workers_share_one_tap_one_repeat_run_and_one_idempotency_key(
    two_workers: tuple[LiveDashboard, LiveDashboard], scratch_vhost: str
) -> None:
    a, b = two_workers
    user = make_user("pub", role="publisher")
    cookie = session_cookie(user)
    # Cookies are per host, not per port: both workers get the session (and the CSRF cookie).
    name, _, value = cookie.partition("=")
    cookies = {name: value}

    # The same topology answers the same ETag from either worker: B says "not modified".
    with httpx.Client(cookies=cookies, timeout=30) as http:
        topology = http.get(f"{a.url}/api/topology", params={"vhost": scratch_vhost})
        assert topology.status_code == 200, topology.text
        again = http.get(
            f"{b.url}/api/topology",
            params={"vhost": scratch_vhost},
            headers={"If-None-Match": topology.headers["ETag"]},
        )
        assert again.status_code == 304, (topology.headers["ETag"], again.headers.get("ETag"))

    async def scenario() -> None:
        async with (
            open_tap(b.url, cookie, vhost=scratch_vhost) as viewer,
            httpx.AsyncClient(cookies=cookies, timeout=30) as http,
        ):
            await receive_until(viewer, is_running)

            # A starts the run; B's viewer sees its messages through the one tap process.
            started = await http.post(
                f"{a.url}/api/publish",
                json={
                    "vhost": scratch_vhost,
                    "exchange": "orders",
                    "routing_key": "order.eu.run",
                    "body": "one of many",
                    "repeat": COPIES,
                    "rate": RATE,
                },
            )
            assert started.status_code == 202, started.text
            run_url, prefix = started.json()["run_url"], started.json()["message_id"] + "."
            seen = await receive_until(
                viewer, lambda m: any(i.startswith(prefix) for i in message_ids([m]))
            )
            assert any(i.startswith(prefix) for i in message_ids(seen))

            # B reads the run's progress (written by A's thread a few times a second)...
            async def progress_on_b() -> dict:
                progress = (await http.get(f"{b.url}{run_url}")).json()["run"]
                assert (progress["state"], progress["total"]) == ("running", COPIES)
                assert progress["published"] > 0
                return progress

            progress = await eventually_async(progress_on_b, what="the run's progress on B")
            # ...and cancels it.
            cancel = await http.post(f"{b.url}{run_url}/cancel", json={})
            assert cancel.status_code == 200, cancel.text
            cancelled = cancel.json()["run"]
            assert cancelled["state"] == "cancelled", cancelled
            assert progress["published"] <= cancelled["published"] < COPIES

            # A's run has stopped: A, whose thread published it, says so with the same count.
            final = (await http.get(f"{a.url}{run_url}")).json()["run"]
            assert (final["state"], final["published"]) == ("cancelled", cancelled["published"])

            # A form submitted on A, then again (a double click landing elsewhere) on B.
            page = await http.get(f"{a.url}/publish/", params={"vhost": scratch_vhost})
            [token] = IDEMPOTENCY_KEY.findall(page.text)
            csrf = page.cookies["csrftoken"]
            form = {
                "idempotency_key": token,
                "mandatory_present": "1",
                "mandatory": "true",
                "vhost": scratch_vhost,
                "exchange": "orders",
                "routing_key": "order.eu.form",
                "body_encoding": "text",
                "body": "submitted twice",
                "message_id": f"form-{token}",
            }
            answers = [
                await http.post(
                    f"{worker.url}/publish/send",
                    data=form,
                    headers={"X-CSRFToken": csrf, "HX-Request": "true"},
                )
                for worker in (a, b)
            ]
            assert [answer.status_code for answer in answers] == [200, 200]
            assert ['data-testid="outcome-duplicate"' in answer.text for answer in answers] == [
                False,
                True,
            ]

            # Published once: by the time a later message reaches the viewer, the form's
            # message has been seen exactly once (the run's, none after its cancel).
            with amqp_channel(scratch_vhost) as channel:
                marker = pika.BasicProperties(message_id="marker")
                channel.basic_publish("orders", "order.eu.marker", b"after", properties=marker)
            rest = await receive_until(viewer, lambda m: "marker" in message_ids([m]))
            ids = message_ids(seen + rest)
            assert ids.count(f"form-{token}") == 1
            run_messages = [i for i in ids if i.startswith(prefix)]
            assert len(set(run_messages)) <= cancelled["published"]

    run_async(scenario)
