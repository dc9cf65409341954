"""The scenario pages on the real broker: list, load and unload, the live view, run controls."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from django.test import Client

from flows.broker.errors import BrokerNotFound
from flows.broker.management_api import ManagementClient
from flows.demo import service
from flows.demo.loading import find_load, unload
from flows.demo.scenario import available_scenarios
from tests.support.accounts import make_user
from tests.support.live_page import ws_query
from tests.support.waiting import eventually

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def demo_vhost(management_client: ManagementClient) -> Iterator[str]:
    """A vhost name that does not exist yet: loading a scenario there creates it."""
    name = f"flows-test-demo-{uuid.uuid4().hex[:10]}"
    yield name
    for scenario in available_scenarios():
        service.demo_runs().stop_run(scenario, name)
        with contextlib.suppress(BrokerNotFound):
            unload(scenario, vhost=name, client=management_client)
    with contextlib.suppress(BrokerNotFound):
        management_client.remove_vhost(name)


@pytest.fixture
def viewer(db, django_user_model) -> Client:
    """Signed in as a viewer: may not load or run scenarios."""
    client = Client()
    client.force_login(make_user("viewer"))
    return client


@pytest.fixture
def speaker(db, django_user_model) -> Client:
    """Signed in as an admin: may load, unload and run scenarios and choose the firehose."""
    user = make_user("speaker", role="admin")
    client = Client()
    client.force_login(user)
    return client


def load_through_page(client: Client, name: str, vhost: str) -> None:
    response = client.post(f"/demo/{name}/load", {"vhost": vhost})
    assert response.status_code == 200, response.content.decode()
    assert find_load(name, vhost) is not None


@pytest.mark.parametrize(
    "url", ["/demo/", "/demo/topics/", "/demo/topics/controls", "/demo/topics/load"]
)
def test_anonymous_visitors_are_sent_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_list_names_every_scenario_with_a_load_button(speaker):
    html = speaker.get("/demo/").content.decode()
    for name in ("topics", "events", "belery", "mailer", "failures"):
        assert f'href="/demo/{name}/"' in html
        assert f'action="/demo/{name}/load"' in html
    assert "demo-refusal" not in html


@pytest.mark.parametrize("role", ["viewer", "publisher"])
def test_only_an_admin_may_load_and_the_others_see_why(client, db, role, demo_vhost):
    client.force_login(make_user(f"a-{role}", role=role))
    html = client.get("/demo/").content.decode()
    assert "flows.manage_demo" in html
    assert "disabled" in html

    response = client.post("/demo/topics/load", {"vhost": demo_vhost})
    assert response.status_code == 403
    assert "may not load or unload demo scenarios" in response.content.decode()
    assert find_load("topics", demo_vhost) is None


def test_a_publisher_may_run_a_loaded_scenario(client, speaker, demo_vhost):
    load_through_page(speaker, "topics", demo_vhost)
    client.force_login(make_user("runner", role="publisher"))
    response = client.post("/demo/topics/run", {"vhost": demo_vhost, "action": "start"})
    assert response.status_code == 200
    assert service.demo_runs().get("topics", demo_vhost) is not None
    client.post("/demo/topics/run", {"vhost": demo_vhost, "action": "stop"})
    assert service.demo_runs().get("topics", demo_vhost) is None


def test_loading_and_unloading_from_the_list(speaker, demo_vhost, management_client):
    response = speaker.post("/demo/topics/load", {"vhost": demo_vhost}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="demo-scenarios"')  # the part htmx swaps
    assert f"loaded &#x27;topics&#x27; into new vhost &#x27;{demo_vhost}&#x27;" in html
    assert {e["name"] for e in management_client.exchanges(demo_vhost)} >= {"food"}

    response = speaker.post("/demo/topics/unload", {"vhost": demo_vhost}, **HTMX)
    assert "deleted vhost" in response.content.decode()
    assert find_load("topics", demo_vhost) is None
    with pytest.raises(BrokerNotFound):
        management_client.exchanges(demo_vhost)


def test_unloading_what_is_not_loaded_says_so(speaker, demo_vhost):
    response = speaker.post("/demo/topics/unload", {"vhost": demo_vhost})
    assert response.status_code == 409
    assert "is not loaded in vhost" in response.content.decode()


def test_an_unknown_scenario_is_not_found(speaker):
    assert speaker.get("/demo/no-such-thing/").status_code == 404
    assert speaker.post("/demo/no-such-thing/load").status_code == 404


def test_a_scenario_not_loaded_says_where_to_load_it(speaker, demo_vhost):
    html = speaker.get("/demo/topics/", {"vhost": demo_vhost}).content.decode()
    assert 'data-testid="demo-not-loaded"' in html
    assert "ws-connect" not in html
    assert "What to watch for" in html


def test_a_loaded_scenario_is_watched_with_the_firehose_graph_open(speaker, demo_vhost):
    load_through_page(speaker, "topics", demo_vhost)
    html = speaker.get("/demo/topics/", {"vhost": demo_vhost}).content.decode()
    assert ws_query(html) == {"vhost": [demo_vhost], "mode": ["firehose"]}
    assert "data-graph-open" in html
    assert 'class="live-stage"' in html
    assert "food.icecream goes to two queues at once" in html  # what to watch for
    assert "deserts, not desserts" in html  # the scenario's notes


def test_without_the_firehose_permission_the_page_watches_as_the_live_page_does(
    speaker, viewer, demo_vhost
):
    load_through_page(speaker, "topics", demo_vhost)
    html = viewer.get("/demo/topics/", {"vhost": demo_vhost}).content.decode()
    assert ws_query(html) == {"vhost": [demo_vhost]}  # auto
    assert 'data-testid="demo-no-firehose"' in html
    assert "Start workers and publishers" in html and "disabled" in html


def test_starting_before_loading_is_refused(speaker, demo_vhost):
    response = speaker.post("/demo/topics/run", {"vhost": demo_vhost, "action": "start"})
    assert response.status_code == 409
    assert "before starting it" in response.content.decode()
    assert service.demo_runs().get("topics", demo_vhost) is None


def test_a_user_who_may_not_publish_cannot_start_a_run(speaker, viewer, demo_vhost):
    load_through_page(speaker, "topics", demo_vhost)
    response = viewer.post("/demo/topics/run", {"vhost": demo_vhost, "action": "start"})
    assert response.status_code == 403
    assert service.demo_runs().get("topics", demo_vhost) is None


def test_start_change_while_running_and_stop(speaker, demo_vhost, management_client):
    load_through_page(speaker, "topics", demo_vhost)
    response = speaker.post("/demo/topics/run", {"vhost": demo_vhost, "action": "start"}, **HTMX)
    assert response.status_code == 200
    assert 'data-testid="demo-run-state">running' in response.content.decode()
    run = service.demo_runs().get("topics", demo_vhost)
    assert run is not None and run.running

    response = speaker.post(
        "/demo/topics/publisher", {"vhost": demo_vhost, "publisher": "food app", "rate": "4"}
    )
    assert response.status_code == 200
    assert run.rates["food app"] == 4.0
    assert run.publishers["food app"].rate == 4.0

    response = speaker.post(
        "/demo/topics/publisher",
        {"vhost": demo_vhost, "publisher": "drinks app", "action": "stop"},
    )
    assert response.status_code == 200
    assert "drinks app" not in run.publishers

    response = speaker.post(
        "/demo/topics/workers",
        {
            "vhost": demo_vhost,
            "worker": "food lover",
            "count": "2",
            "prefetch": "5",
            "failure_rate": "0.5",
        },
    )
    assert response.status_code == 200
    group = run.groups["food lover"]
    assert len(group.threads) == 2
    assert (group.settings.prefetch, group.settings.failure_rate) == (5, 0.5)
    eventually(
        lambda: (
            {
                c["client_properties"].get("connection_name")
                for c in management_client.connections(demo_vhost)
            }
            >= {"food lover 1", "food lover 2"}
        ),
        what="both food lovers connected, each under its own name",
    )
    eventually(
        lambda: run.report().workers["food lover 1"].deliveries > 0,
        what="food lover 1 got a delivery",
    )
    html = speaker.get("/demo/topics/controls", {"vhost": demo_vhost}).content.decode()
    assert "food lover 1:" in html
    counts = speaker.get("/demo/topics/controls", {"vhost": demo_vhost, "counts": "1"})
    html = counts.content.decode()
    assert 'id="demo-deliveries-1" data-testid="deliveries" hx-swap-oob="true"' in html
    assert "food lover 1:" in html and "<form" not in html

    response = speaker.post("/demo/topics/run", {"vhost": demo_vhost, "action": "stop"})
    assert response.status_code == 200
    assert 'data-testid="demo-run-state">stopped' in response.content.decode()
    assert not run.running
    assert service.demo_runs().get("topics", demo_vhost) is None


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"worker": "food lover", "count": "two"}, 400, "count: &#x27;two&#x27; is not a whole"),
        ({"worker": "food lover", "failure_rate": "2"}, 409, "a failure rate is from 0 to 1"),
        ({"worker": "nobody", "count": "1"}, 409, "no worker named &#x27;nobody&#x27;"),
        ({"publisher": "food app", "rate": "-1"}, 409, "a rate is from 0 to"),
        ({"publisher": "nobody", "action": "start"}, 409, "no publisher named"),
    ],
)
def test_a_bad_setting_is_refused_with_its_reason(speaker, demo_vhost, form, status, message):
    load_through_page(speaker, "topics", demo_vhost)
    speaker.post("/demo/topics/run", {"vhost": demo_vhost, "action": "start"})
    path = "/demo/topics/workers" if "worker" in form else "/demo/topics/publisher"
    response = speaker.post(path, {"vhost": demo_vhost, **form})
    assert response.status_code == status
    assert message in response.content.decode()


def test_changing_a_run_that_is_not_running_is_refused(speaker, demo_vhost):
    load_through_page(speaker, "topics", demo_vhost)
    response = speaker.post(
        "/demo/topics/publisher", {"vhost": demo_vhost, "publisher": "food app", "rate": "2"}
    )
    assert response.status_code == 409
    assert "start it first" in response.content.decode()


def test_unloading_stops_the_run(speaker, demo_vhost):
    load_through_page(speaker, "topics", demo_vhost)
    speaker.post("/demo/topics/run", {"vhost": demo_vhost, "action": "start"})
    run = service.demo_runs().get("topics", demo_vhost)
    assert run is not None
    speaker.post("/demo/topics/unload", {"vhost": demo_vhost})
    assert not run.running
    assert find_load("topics", demo_vhost) is None


def test_the_scenario_page_loads_into_its_vhost_and_comes_back(speaker, demo_vhost):
    page = f"/demo/topics/?vhost={demo_vhost}"
    html = speaker.get(page).content.decode()
    assert 'name="next" value="/demo/topics/?vhost=' in html
    response = speaker.post("/demo/topics/load", {"vhost": demo_vhost, "next": page})
    assert response.status_code == 302
    assert response["Location"] == page
    assert find_load("topics", demo_vhost) is not None


def test_a_load_never_sends_the_browser_to_another_site(speaker, demo_vhost):
    response = speaker.post(
        "/demo/topics/load", {"vhost": demo_vhost, "next": "https://evil.example/"}
    )
    assert response.status_code == 200
    assert find_load("topics", demo_vhost) is not None


def test_a_worker_the_broker_stopped_is_named_with_its_reason(
    speaker, demo_vhost, management_client
):
    load_through_page(speaker, "topics", demo_vhost)
    speaker.post("/demo/topics/run", {"vhost": demo_vhost, "action": "start"})
    management_client.remove_queue(demo_vhost, "deserts-icecream-only")

    def shown() -> str:
        html = speaker.get("/demo/topics/controls", {"vhost": demo_vhost}).content.decode()
        assert 'data-testid="demo-run-error">deserts fan 1: ' in html
        return html

    html = eventually(shown, what="the stopped worker named on the page")
    assert "the broker cancelled the consumer of &#x27;deserts-icecream-only&#x27;" in html


# --- a presenter's step -------------------------------------------------------------------------


def test_each_step_holds_the_publishers_and_publishes_one_message(speaker, demo_vhost):
    load_through_page(speaker, "topics", demo_vhost)
    step = {"vhost": demo_vhost, "publisher": "deserts app"}
    response = speaker.post("/demo/topics/step", step, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="demo-held"' in html
    assert '<option value="deserts app" selected>' in html  # the next step steps it again
    run = service.demo_runs().get("topics", demo_vhost)
    assert run is not None and run.held

    def published() -> dict[str, int]:
        return {name: c.published for name, c in run.report().publishers.items()}

    eventually(lambda: published()["deserts app"] == 1, what="the first step's message")
    speaker.post("/demo/topics/step", step, **HTMX)
    eventually(lambda: published()["deserts app"] == 2, what="the second step's message")
    assert published() == {"food app": 0, "deserts app": 2, "drinks app": 0}

    response = speaker.post("/demo/topics/run", {"vhost": demo_vhost, "action": "resume"})
    assert response.status_code == 200
    assert not run.held and run.rates["food app"] == 1.0
    assert 'data-testid="demo-held"' not in response.content.decode()


@pytest.mark.parametrize(
    ("who", "form", "status", "message"),
    [
        ("viewer", {"publisher": "food app"}, 403, "may not run demo scenarios"),
        ("speaker", {"publisher": "nobody"}, 409, "no publisher named &#x27;nobody&#x27;"),
    ],
)
def test_a_step_that_cannot_be_done_is_refused(
    request, speaker, demo_vhost, who, form, status, message
):
    load_through_page(speaker, "topics", demo_vhost)
    response = request.getfixturevalue(who).post("/demo/topics/step", {"vhost": demo_vhost, **form})
    assert response.status_code == status
    assert message in response.content.decode()
    assert service.demo_runs().get("topics", demo_vhost) is None


# --- the composer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routing_key", "shown"),
    [
        ("food.icecream", ["routed", "all-food", "all-icecream"]),
        ("drinks.coffee", ["returned: unroutable"]),
    ],
)
def test_the_composer_publishes_to_the_scenario_and_says_where_it_went(
    speaker, demo_vhost, routing_key, shown
):
    load_through_page(speaker, "topics", demo_vhost)
    page = speaker.get("/demo/topics/", {"vhost": demo_vhost}).content.decode()
    assert '<option value="food" selected>food</option>' in page
    assert '<option value="">(default exchange)</option>' in page
    response = speaker.post(
        "/demo/topics/publish",
        {
            "vhost": demo_vhost,
            "exchange": "food",
            "routing_key": routing_key,
            "body": '{"dish": "icecream"}',
            "body_encoding": "json",
        },
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="publish-result"' in html
    for text in shown:
        assert text in html


def test_the_composer_names_a_bad_field(speaker, demo_vhost):
    load_through_page(speaker, "topics", demo_vhost)
    response = speaker.post(
        "/demo/topics/publish",
        {"vhost": demo_vhost, "exchange": "food", "body": "{not json", "body_encoding": "json"},
        **HTMX,
    )
    assert response.status_code == 200  # htmx swaps the answer in place
    html = response.content.decode()
    assert 'data-testid="composer-error">body:' in html
    assert "{not json" in html  # what was typed is kept


def test_without_the_publish_permission_the_composer_is_disabled_saying_why(
    speaker, viewer, demo_vhost
):
    load_through_page(speaker, "topics", demo_vhost)
    html = viewer.get("/demo/topics/", {"vhost": demo_vhost}).content.decode()
    assert 'data-testid="composer-refusal"' in html
    assert "<fieldset disabled>" in html
    response = viewer.post(
        "/demo/topics/publish", {"vhost": demo_vhost, "exchange": "food", "routing_key": "x"}
    )
    assert response.status_code == 403  # the form is disabled; a crafted post is refused
    assert "may not publish" in response.content.decode()
