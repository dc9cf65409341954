"""The audit log: an entry for each kind of write the dashboard makes to a broker, with who, what
and how it went, never a secret; `/audit/` and `GET /api/audit` for admins; the retention."""

from __future__ import annotations

import datetime as dt
import io
import json
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from flows import audit
from flows.demo import service as demo_service
from flows.demo.scenario import load_scenario
from flows.models import AuditEntry
from tests.support.accounts import make_user
from tests.support.communicators import connect, run_with_tap
from tests.support.publishing import DemoTopology

SECRET_BODY = "the-body-must-not-be-kept-4711"


def only_entry(**filters) -> AuditEntry:
    found = list(AuditEntry.objects.filter(**filters))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def publisher(client: Client, db) -> Client:
    client.force_login(make_user("pat", role="publisher"))
    return client


def publish(client: Client, demo: DemoTopology, **extra):
    fields = demo.fields(body=SECRET_BODY, message_id="m-1", **extra)
    return client.post("/api/publish", data=json.dumps(fields), content_type="application/json")


def test_a_publish_is_recorded_with_its_size_and_id_never_its_body(publisher, demo):
    assert publish(publisher, demo).status_code == 200
    entry = only_entry(action=audit.PUBLISH)
    assert (entry.username, entry.vhost, entry.target, entry.ok) == (
        "pat",
        demo.vhost,
        "demo.topic",
        True,
    )
    assert entry.message == "routed"
    assert entry.details["message_id"] == "m-1"
    assert entry.details["body_bytes"] == len(SECRET_BODY)
    assert entry.details["routing_key"] == "a.b"
    assert SECRET_BODY not in json.dumps(audit.to_json(entry))


def test_a_repeat_run_is_one_entry_not_one_per_message(publisher, demo):
    response = publish(publisher, demo, repeat=20)
    assert response.status_code == 202
    demo.wait_for_depth("q.a", 20)
    entry = only_entry(action=audit.REPEAT_RUN)
    assert entry.details["repeat"] == 20
    assert entry.details["run"] == response.json()["run"]["id"]
    assert not AuditEntry.objects.filter(action=audit.PUBLISH).exists()


def test_a_publish_the_broker_refused_is_recorded_as_an_error(publisher, demo):
    response = publish(publisher, demo, exchange="no-such-exchange")
    assert response.status_code == 404
    entry = only_entry(action=audit.PUBLISH)
    assert not entry.ok and "no-such-exchange" in entry.message


def test_a_refused_publish_changed_nothing_and_is_not_recorded(client, db, demo):
    client.force_login(make_user("vic", role="viewer"))
    assert publish(client, demo).status_code == 403
    assert not AuditEntry.objects.exists()


def test_demo_loads_unloads_and_runs_are_recorded(db, scratch_vhost, fresh_runtime):
    admin = make_user("ada", role="admin")
    topics = load_scenario("topics")
    demo_service.load_for(admin, topics, vhost=scratch_vhost)
    demo_service.start_for(admin, topics, vhost=scratch_vhost)
    demo_service.change_publisher(
        admin, topics, vhost=scratch_vhost, name=topics.publishers[0].name, action="set", rate=2
    )
    demo_service.stop_for(admin, topics, vhost=scratch_vhost)
    demo_service.unload_for(admin, topics, vhost=scratch_vhost)
    actions = list(
        AuditEntry.objects.filter(username="ada").order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        audit.DEMO_LOAD,
        audit.DEMO_RUN_START,
        audit.DEMO_RUN_CHANGE,
        audit.DEMO_RUN_STOP,
        audit.DEMO_UNLOAD,
    ]
    assert set(AuditEntry.objects.values_list("vhost", "target")) == {(scratch_vhost, "topics")}


def test_tracing_on_and_off_is_recorded_with_the_user_who_chose_the_firehose(
    transactional_db, scratch_vhost, management_client
):
    admin = make_user("fiona", role="admin")

    async def run() -> None:
        socket = connect(f"/ws/tap/?vhost={quote(scratch_vhost, safe='')}&mode=firehose", admin)
        await socket.connect()
        while True:
            frame = json.loads(await socket.receive_from(timeout=30))
            if frame.get("status", {}).get("state") == "running":
                break
        await socket.disconnect()

    run_with_tap(run)  # stopping the runtime stops the tap: tracing goes off again
    on = only_entry(action=audit.TRACING_ON)
    off = only_entry(action=audit.TRACING_OFF)
    assert (on.username, on.vhost, on.ok) == ("fiona", scratch_vhost, True)
    assert (off.username, off.vhost) == ("fiona", scratch_vhost)
    assert on.at <= off.at
    assert management_client.vhost(scratch_vhost).tracing is False


@pytest.mark.parametrize("action", [audit.MOVE_MESSAGES])
def test_other_features_record_through_the_one_function(db, action):
    user = make_user("mo", role="admin")
    entry = audit.record(user, action, vhost="v", target="dlq", details={"count": 3})
    assert entry is not None and AuditEntry.objects.get() == entry
    assert audit.to_json(entry) | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "user": "mo",
        "action": action,
        "vhost": "v",
        "target": "dlq",
        "details": {"count": 3},
        "result": "ok",
        "message": "",
    }


def test_entries_older_than_the_retention_are_pruned_on_write_and_by_command(db, settings):
    settings.FLOWS_AUDIT_RETENTION_DAYS = 30
    old = audit.record("x", audit.PUBLISH)
    assert old is not None
    AuditEntry.objects.filter(pk=old.pk).update(at=timezone.now() - dt.timedelta(days=31))
    audit.record("x", audit.PUBLISH)
    assert not AuditEntry.objects.filter(pk=old.pk).exists()

    AuditEntry.objects.update(at=timezone.now() - dt.timedelta(days=31))
    out = io.StringIO()
    call_command("prune_audit", stdout=out)
    assert "Deleted 1 audit entries older than 30 days" in out.getvalue()
    assert not AuditEntry.objects.exists()


# --- reading it ---------------------------------------------------------------------------------


@pytest.fixture
def entries(db) -> None:
    for index in range(60):
        audit.record("ann", audit.PUBLISH, vhost="a", target=f"ex{index}")
    audit.record("bob", audit.DEMO_LOAD, vhost="b", target="topics")
    audit.record("bob", audit.DEMO_UNLOAD, vhost="b", target="topics", ok=False, message="down")


@pytest.fixture
def admin(client: Client, db) -> Client:
    client.force_login(make_user("boss", role="admin"))
    return client


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ({}, 62),
        ({"user": "bob"}, 2),
        ({"action": "demo"}, 2),  # a prefix finds the family
        ({"action": "demo.load"}, 1),
        ({"vhost": "a"}, 60),
        ({"user": "bob", "vhost": "a"}, 0),
        ({"limit": "5"}, 5),
        ({"since": "2000-01-01"}, 62),
        ({"since": "2999-01-01T00:00:00Z"}, 0),
    ],
)
def test_the_api_filters_by_user_action_vhost_and_time(admin, entries, query, count):
    response = admin.get("/api/audit", query)
    assert response.status_code == 200
    assert len(response.json()["entries"]) == count


def test_the_api_answers_newest_first_in_the_one_shape(admin, entries):
    newest = admin.get("/api/audit", {"limit": "1"}).json()["entries"][0]
    assert newest["action"] == audit.DEMO_UNLOAD
    assert (newest["result"], newest["message"], newest["user"]) == ("error", "down", "bob")


@pytest.mark.parametrize(
    ("query", "field"),
    [({"since": "yesterday"}, "since"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit")],
)
def test_bad_query_parameters_are_named(admin, query, field):
    response = admin.get("/api/audit", query)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]


def test_the_page_filters_and_pages(admin, entries):
    first = admin.get("/audit/", {"user": "ann"}).content.decode()
    assert first.count('data-action="publish"') == 50
    assert "page 1 of 2" in first and "?user=ann&amp;page=2" in first
    second = admin.get("/audit/", {"user": "ann", "page": "2"}).content.decode()
    assert second.count('data-action="publish"') == 10
    only_bob = admin.get("/audit/", {"action": "demo"}).content.decode()
    assert 'data-action="demo.unload"' in only_bob and 'data-action="publish"' not in only_bob
    assert "error</span>: down" in only_bob


def test_the_audit_link_shows_for_admins_only(admin):
    assert 'href="/audit/"' in admin.get("/").content.decode()
    other = Client()
    other.force_login(make_user("pub", role="publisher"))
    assert 'href="/audit/"' not in other.get("/").content.decode()


def test_the_demo_command_records_its_changes_and_refuses_when_read_only(
    db, scratch_vhost, settings
):
    out = io.StringIO()
    call_command("demo", "load", "topics", "--vhost", scratch_vhost, stdout=out)
    call_command("demo", "unload", "topics", "--vhost", scratch_vhost, stdout=out)
    assert list(AuditEntry.objects.order_by("id").values_list("username", "action")) == [
        ("manage.py demo", audit.DEMO_LOAD),
        ("manage.py demo", audit.DEMO_UNLOAD),
    ]
    settings.FLOWS_READ_ONLY = True
    with pytest.raises(CommandError, match="read-only"):
        call_command("demo", "load", "topics", "--vhost", scratch_vhost, stdout=out)
