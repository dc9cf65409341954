"""`FLOWS_READ_ONLY=true`: every write to the broker refused, for an admin too, with the reason,
and the broker exactly as it was afterwards (read back from the broker itself)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from flows import access
from flows.broker.errors import BrokerNotFound
from flows.demo.loading import find_load, load
from flows.demo.scenario import load_scenario
from flows.demo.service import demo_runs
from flows.models import AuditEntry, PublishTemplate
from tests.support.accounts import make_user
from tests.support.communicators import connect, run_with_tap
from tests.support.publishing import DemoTopology


@dataclass(frozen=True)
class Write:
    name: str
    path: str  # `{v}`: the vhost, quoted
    data: dict[str, Any] = field(default_factory=dict)
    json: bool = False
    loaded: bool = False  # the topics scenario is loaded first (to unload or run it)


MESSAGE = {"vhost": "{v}", "exchange": "demo.topic", "routing_key": "a.b", "body": "secret"}
FORM = {**MESSAGE, "body_encoding": "text", "mandatory_present": "1", "mandatory": "true"}
NEW_VHOST = f"flows-test-never-{uuid.uuid4().hex[:8]}"
WRITES = [
    Write("the publish form", "/publish/send", FORM),
    Write("a saved template", "/publish/templates/{template}/publish"),
    Write("the publish API", "/api/publish", MESSAGE, json=True),
    Write("a repeat run", "/api/publish", {**MESSAGE, "repeat": 50}, json=True),
    Write(
        "RabbitMQ's publish body",
        "/api/exchanges/{v}/demo.topic/publish",
        {"routing_key": "a.b", "payload": "x", "payload_encoding": "string", "properties": {}},
        json=True,
    ),
    Write("a demo load", "/demo/topics/load", {"vhost": "{v}"}),
    Write("a demo load into a new vhost", "/demo/topics/load", {"vhost": NEW_VHOST}),
    Write("a demo unload", "/demo/topics/unload", {"vhost": "{v}"}, loaded=True),
    Write("a demo run", "/demo/topics/run", {"vhost": "{v}", "action": "start"}, loaded=True),
]


def broker_state(demo: DemoTopology) -> dict[str, Any]:
    """What a write could change, read from the broker (depths by passive declare: exact)."""
    client, vhost = demo.client, demo.vhost
    return {
        "vhosts": sorted(v.name for v in client.vhosts() if v.name in (vhost, NEW_VHOST)),
        "exchanges": sorted((e["name"], e["type"]) for e in client.exchanges(vhost)),
        "queues": sorted(q["name"] for q in client.queues(vhost)),
        "bindings": sorted(
            (b["source"], b["destination"], b["routing_key"]) for b in client.bindings(vhost)
        ),
        "depths": {queue: demo.depth(queue) for queue in ("q.a", "q.all")},
        "tracing": client.vhost(vhost).tracing,
    }


def send(client: Client, write: Write, vhost: str, template: int):
    url = write.path.replace("{v}", quote(vhost, safe="")).replace("{template}", str(template))
    body = json.loads(json.dumps(write.data).replace("{v}", vhost))
    if write.json:
        return client.post(url, data=json.dumps(body), content_type="application/json")
    return client.post(url, data=body)


@pytest.fixture(autouse=True)
def no_new_vhost_left(patient_client) -> Iterator[None]:
    """Should a load get through after all, the vhost it made goes (the test fails anyway)."""
    yield
    with contextlib.suppress(BrokerNotFound):
        patient_client.remove_vhost(NEW_VHOST)


@pytest.fixture
def admin(client: Client, db) -> Client:
    client.force_login(make_user("ro-admin", role="admin"))
    return client


@pytest.mark.parametrize("write", WRITES, ids=lambda write: write.name)
def test_every_write_is_refused_with_the_reason_and_the_broker_is_unchanged(
    admin: Client, demo: DemoTopology, settings, write: Write
) -> None:
    if write.loaded:
        load(load_scenario("topics"), vhost=demo.vhost)
    owner = make_user("owner", role="publisher")
    template = PublishTemplate.objects.create(
        name="t", owner=owner, shared=True, fields={**MESSAGE, "vhost": demo.vhost}
    )
    before = broker_state(demo)
    settings.FLOWS_READ_ONLY = True

    response = send(admin, write, demo.vhost, template.pk)

    assert response.status_code == 403
    if write.json:
        assert response.json() == {"error": access.READ_ONLY, "fields": {}}
    else:
        assert access.READ_ONLY in response.content.decode()
    assert broker_state(demo) == before
    assert demo_runs().get("topics", demo.vhost) is None
    assert (find_load("topics", demo.vhost) is not None) is write.loaded
    assert not AuditEntry.objects.exists()  # nothing was written, so nothing is recorded
    with pytest.raises(BrokerNotFound):
        demo.client.vhost(NEW_VHOST)


def test_the_header_and_the_forms_say_why_nothing_can_be_changed(
    admin: Client, settings, broker_vhost: str
) -> None:
    settings.FLOWS_READ_ONLY = True
    for path in ("/", "/topology/", "/live/", "/demo/", "/audit/"):
        html = admin.get(path, {"vhost": broker_vhost}).content.decode()
        assert 'data-testid="read-only-notice"' in html, path
        assert access.READ_ONLY in html
    publish = admin.get("/publish/", {"vhost": broker_vhost}).content.decode()
    assert "<fieldset disabled" in publish
    assert 'data-testid="publish-disabled-reason">' + access.READ_ONLY in publish
    demo_list = admin.get("/demo/").content.decode()
    assert 'class="primary" disabled>Load</button>' in demo_list
    live = admin.get("/live/", {"vhost": broker_vhost}).content.decode()
    assert "data-firehose-offer" not in live


def test_a_dashboard_that_is_not_read_only_says_nothing_about_it(admin: Client) -> None:
    assert 'data-testid="read-only' not in admin.get("/").content.decode()


def test_the_firehose_is_refused_and_tracing_stays_off(
    transactional_db, settings, scratch_vhost: str, management_client
) -> None:
    settings.FLOWS_READ_ONLY = True
    settings.FLOWS_FIREHOSE_VHOSTS = [scratch_vhost]  # configured: still not on read-only
    admin = make_user("ro-watcher", role="admin")
    vhost = quote(scratch_vhost, safe="")
    frames: list[Any] = []

    async def run() -> None:
        refused = connect(f"/ws/tap/?vhost={vhost}&mode=firehose", admin)
        await refused.connect()
        frames.append(json.loads(await refused.receive_from(timeout=10)))
        frames.append(await refused.receive_output(timeout=10))
        auto = connect(f"/ws/tap/?vhost={vhost}", admin)  # auto: bindings, not the firehose
        await auto.connect()
        frames.append(json.loads(await auto.receive_from(timeout=30)))
        await auto.disconnect()
        anonymous = connect(f"/ws/tap/?vhost={vhost}", AnonymousUser())
        await anonymous.connect()
        await anonymous.receive_from(timeout=10)

    run_with_tap(run)
    error, closed, status = frames
    assert error["type"] == "error" and "read-only" in error["message"]
    assert closed == {"type": "websocket.close", "code": 4403}
    assert status["type"] == "status" and status["status"]["mode"] == "bindings"
    assert management_client.vhost(scratch_vhost).tracing is False
    assert not AuditEntry.objects.filter(action__startswith="tracing").exists()
