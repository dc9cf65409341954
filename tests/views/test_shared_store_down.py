"""The shared store (Redis, `CACHE_URL`) down: every request that needs it answers with a
clear error where the person looks, never a 500, and nothing is published behind their back.

Redis is "down" for real here: the dashboard's cache points at a loopback port where nothing
listens (the machine's Redis stays up for everything else).
"""

from __future__ import annotations

import uuid

import pytest

from flows.publishing.fields import parse_publish_request
from flows.publishing.publisher import Publishers, PublishFailed
from flows.publishing.runs import SharedRuns
from flows.publishing.service import IdempotentPublishes
from flows.runtime import runtime
from flows.shared_store import SharedStoreDown, shared_store
from tests.support.live_server import free_port

pytestmark = pytest.mark.django_db

STORE_DOWN = "shared store (Redis) did not answer"  # (the apostrophe before it is escaped in HTML)
RUN_ID = uuid.uuid4().hex


@pytest.fixture
def redis_down(settings, demo):
    """The default cache on a port nothing listens on; the runtime's members made anew
    against it (and stopped before the demo vhost goes)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        }
    }
    runtime().stop()
    yield
    runtime().stop()


def test_the_parts_say_the_store_is_down_and_publish_nothing(redis_down) -> None:
    published: list[str] = []
    with pytest.raises(PublishFailed) as refused:
        IdempotentPublishes(shared_store()).run((1, "key"), lambda: published.append("x"))
    assert refused.value.kind == "unavailable"
    assert refused.value.message.startswith("The dashboard's " + STORE_DOWN)
    assert "nothing was published" in refused.value.message
    assert published == []
    runs = SharedRuns(shared_store())
    with pytest.raises(SharedStoreDown, match="progress cannot be read"):
        runs.read(RUN_ID)
    with pytest.raises(SharedStoreDown, match="could not be asked to stop"):
        runs.request_cancel(RUN_ID)
    request = parse_publish_request({"vhost": "v", "exchange": "x", "repeat": "10"})
    with pytest.raises(PublishFailed, match="the repeat run was not started") as not_started:
        Publishers(shared=runs).start_repeat(request)
    assert not_started.value.kind == "unavailable"


def test_the_api_answers_503_with_the_reason_and_nothing_is_published(api, demo, redis_down):
    response = api.post_json(demo.fields(idempotency_key="k-down"))
    assert response.status_code == 503, response.content
    assert response.json()["error"].startswith("The dashboard's " + STORE_DOWN)
    repeat = api.post_json(demo.fields(repeat=5, idempotency_key="k-down-2"))
    assert repeat.status_code == 503, repeat.content
    for path in (f"/api/publish/runs/{RUN_ID}", f"/api/publish/runs/{RUN_ID}/cancel"):
        answer = (
            api.get(path)
            if path.endswith(RUN_ID)
            else api.post(path, data="{}", content_type="application/json")
        )
        assert answer.status_code == 503, answer.content
        assert answer.json()["error"].startswith("The dashboard's " + STORE_DOWN)
    assert demo.depth("q.a") == 0  # nothing published by any of them


def test_the_form_and_the_run_progress_show_the_reason(api, demo, redis_down) -> None:
    form = api.post(
        "/publish/send",
        {**demo.fields(), "idempotency_key": "form-down"},
        HTTP_HX_REQUEST="true",
    )
    assert form.status_code == 200
    assert STORE_DOWN in form.content.decode()
    progress = api.get(f"/publish/runs/{RUN_ID}", HTTP_HX_REQUEST="true")
    assert progress.status_code == 200  # htmx swaps it in, and keeps asking
    page = progress.content.decode()
    assert 'data-testid="run-unavailable"' in page and STORE_DOWN in page
    assert f'hx-get="/publish/runs/{RUN_ID}"' in page
    cancel = api.post(f"/publish/runs/{RUN_ID}/cancel", HTTP_HX_REQUEST="true")
    # Whose run it is cannot be read either: it is not stopped, and says it goes on.
    assert cancel.status_code == 200 and "goes on publishing" in cancel.content.decode()
    assert api.get(f"/publish/runs/{RUN_ID}").status_code == 503  # without htmx
    assert demo.depth("q.a") == 0


def test_signing_in_is_refused_with_the_reason_not_let_through(client, redis_down) -> None:
    """The throttle cannot count failed sign-ins: it stays shut, and says why."""
    from tests.support.accounts import TEST_PASSWORD, make_user

    make_user("alice")
    response = client.post("/accounts/login/", {"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 503
    assert STORE_DOWN in response.content.decode()
    assert "nobody can sign in until it is back" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # Every other page still renders (its vhost list asked afresh).
    assert client.get("/accounts/login/").status_code == 200
