"""A real Celery app's task messages, sent to the real broker and read back through `/ws/tap/`.

Celery and kombu as a user installs them (requirements-dev.txt): `send_task` with protocol 2
and JSON, with protocol 2 and kombu's pickle serializer, and with protocol 1. The dashboard
(daphne, its tap in-process, in firehose mode) shows each with its task name, args and
kwargs; the pickle is disassembled and read literally, and one carrying a payload that would
write a file when unpickled writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from celery import Celery
from django.conf import settings

from tests.support.live_server import LiveDashboard
from tests.support.tap_socket import is_running, open_tap, receive_until, run_async, session_cookie

pytestmark = pytest.mark.usefixtures("transactional_db")

TASK = "proj.tasks.add"


class WritesAFile:
    """A task argument that, unpickled, writes a file: what kombu's pickle would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (f"__import__('pathlib').Path({str(self.path)!r}).write_text('ran')",))


def broker_url(vhost: str) -> str:
    """The dashboard's own broker (AMQP_URL), on `vhost`, as Celery takes it."""
    parts = urlsplit(settings.AMQP_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


@pytest.fixture
def celery_app(scratch_vhost: str) -> Iterator[Any]:
    def make(**conf: Any) -> Celery:
        app = Celery("flows_test", broker=broker_url(scratch_vhost), set_as_current=False)
        app.conf.update(broker_connection_retry_on_startup=False, task_ignore_result=True, **conf)
        apps.append(app)
        return app

    apps: list[Celery] = []
    yield make
    for app in apps:
        app.close()


def tasks_through_the_tap(
    dashboard: LiveDashboard, cookie: str, vhost: str, send, count: int
) -> list[dict[str, Any]]:
    """Open `/ws/tap/` with the firehose, `send()` once the tap runs, and return the first
    `count` publish events.

    The firehose, as Celery publishes to the default exchange (routing key: the queue's
    name), which no binding can tap."""
    events: list[dict[str, Any]] = []

    def all_arrived(message: dict) -> bool:
        if message.get("type") == "batch":
            events.extend(event for event in message["events"] if event["kind"] == "publish")
        return len(events) >= count

    async def scenario() -> None:
        async with open_tap(dashboard.url, cookie, vhost=vhost, mode="firehose") as ws:
            await receive_until(ws, is_running)
            send()
            await receive_until(ws, all_arrived)

    run_async(scenario)
    return events


def test_celery_tasks_are_shown_with_name_args_and_kwargs_and_pickles_never_unpickled(
    live_dashboard: LiveDashboard, scratch_vhost: str, user, celery_app, tmp_path: Path
) -> None:
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="use_firehose"))
    marker = tmp_path / "unpickled"
    json_app = celery_app(task_serializer="json")
    pickle_app = celery_app(task_serializer="pickle", accept_content=["pickle", "json"])
    protocol_1_app = celery_app(task_serializer="json", task_protocol=1)
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    def send() -> None:
        json_app.send_task(TASK, args=(2, 3), kwargs={"z": 1}, task_id="json-task")
        pickle_app.send_task(
            TASK,
            args=(2, WritesAFile(marker)),
            kwargs={"when": when, "tags": {"a"}},
            task_id="pickle-task",
            countdown=60,
        )
        protocol_1_app.send_task(TASK, args=[4], kwargs={"y": "é"}, task_id="protocol-1-task")

    events = tasks_through_the_tap(
        live_dashboard, session_cookie(user), scratch_vhost, send, count=3
    )
    by_id = {event["properties"].get("correlation_id"): event for event in events}
    assert set(by_id) == {"json-task", "pickle-task", "protocol-1-task"}

    json_task = by_id["json-task"]["decoded"]
    assert json_task["label"] == "Celery task (protocol 2, JSON)"
    assert json_task["celery"]["task"] == TASK and json_task["celery"]["id"] == "json-task"
    assert (json_task["celery"]["args"], json_task["celery"]["kwargs"]) == ([2, 3], {"z": 1})
    assert json_task["celery"]["retries"] == 0
    assert json_task["celery"]["origin"]  # Celery names the sending host

    pickled_event = by_id["pickle-task"]
    assert pickled_event["properties"]["content_type"] == "application/x-python-serialize"
    assert pickled_event["body"]["encoding"] == "base64"  # the raw body is still there
    pickled = pickled_event["decoded"]
    assert pickled["decoder"] == "pickle" and pickled["ok"] is True
    assert pickled["label"] == "Celery task (protocol 2, pickle)"
    celery = pickled["celery"]
    assert (celery["task"], celery["id"]) == (TASK, "pickle-task")
    assert celery["args"] == [
        2,
        f"<global builtins.exec>({WritesAFile(marker).__reduce__()[1][0]!r})",
    ]
    assert celery["kwargs"]["when"].startswith("<global datetime.datetime>(b'")
    assert celery["kwargs"]["tags"] == ["a"]
    assert celery["eta"] and celery["eta"].startswith("20")  # countdown=60 became an eta
    assert "STACK_GLOBAL" in pickled["disassembly"] and "REDUCE" in pickled["disassembly"]
    assert "'exec'" in pickled["disassembly"]
    assert not marker.exists()  # read, shown, and never run

    protocol_1 = by_id["protocol-1-task"]["decoded"]
    assert protocol_1["label"] == "Celery task (protocol 1, JSON)"
    assert protocol_1["celery"]["task"] == TASK
    assert (protocol_1["celery"]["args"], protocol_1["celery"]["kwargs"]) == ([4], {"y": "é"})
    assert "task" not in by_id["protocol-1-task"]["headers"]  # protocol 1: all in the body


def test_the_pickle_celery_sends_is_one_that_runs_code_when_unpickled(
    scratch_vhost: str, celery_app, tmp_path: Path
) -> None:
    """The control for the test above: kombu, the way a worker does, runs the payload."""
    marker = tmp_path / "unpickled"
    app = celery_app(task_serializer="pickle", accept_content=["pickle", "json"])
    app.send_task(TASK, args=(WritesAFile(marker),), task_id="control")
    with app.connection_for_read() as connection:
        # As a worker that accepts pickle receives it: kombu unpickles it on the way in.
        queue = connection.SimpleQueue("celery", accept=["pickle"])
        message = queue.get(timeout=10)
        message.ack()
        queue.close()
    assert message.headers["task"] == TASK
    assert marker.read_text() == "ran"
