"""The live page in a real browser, on the real broker through the real tap."""

from __future__ import annotations

import json
import pickle
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pika
import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from flows.broker.amqp import connection_parameters
from flows.broker.management_api import ManagementClient
from tests.support.accounts import dashboard_users, give_role, make_user
from tests.support.broker_admin import create_vhost_for
from tests.support.live_server import free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def food_vhost(management_client: ManagementClient) -> Iterator[str]:
    """The talk's topic example, with tracing on, so the tap runs on the firehose.

    One vhost for the module: each test opens its own page (a fresh feed) and the tap keeps
    running between tests, which saves seconds per test.
    """
    name = create_vhost_for(
        management_client, f"flows-test-{uuid.uuid4().hex[:10]}", dashboard_users()
    )
    with pika.BlockingConnection(
        connection_parameters(vhost=name, purpose="test-setup")
    ) as connection:
        channel = connection.channel()
        channel.exchange_declare("food", "topic")
        channel.exchange_declare("nowhere", "direct")
        for queue, key in (("pizza", "food.pizza"), ("all-food", "food.*")):
            channel.queue_declare(queue, arguments={"x-max-length": 100})
            channel.queue_bind(queue, "food", key)
    management_client.set_tracing(name, enabled=True)
    yield name
    management_client.set_tracing(name, enabled=False)
    management_client.remove_vhost(name)


@pytest.fixture
def watcher(transactional_db: None):
    """A viewer without a password (no slow hashing); the tests sign in with a session."""
    return make_user("watcher")


def sign_in_with_a_session(page: Page, base_url: str, user) -> None:
    """What Django's test client's force_login does, for the browser: a session cookie.

    Signing in through the form is tested elsewhere; here it would only cost seconds.
    """
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": base_url}]
    )


@pytest.fixture
def signed_in_page(page: Page, live_dashboard, watcher) -> Page:
    sign_in_with_a_session(page, live_dashboard.url, watcher)
    return page


class Publisher:
    def __init__(self, vhost: str) -> None:
        self.connection = pika.BlockingConnection(
            connection_parameters(vhost=vhost, purpose="test-publisher")
        )
        self.channel = self.connection.channel()

    def publish(self, exchange: str, routing_key: str, body: bytes = b"{}", **properties) -> None:
        self.channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(**properties))

    def close(self) -> None:
        self.connection.close()


@pytest.fixture(scope="module")
def publisher(food_vhost: str) -> Iterator[Publisher]:
    publisher = Publisher(food_vhost)
    yield publisher
    publisher.close()


def open_live(page: Page, base_url: str, vhost: str, **filters: str) -> None:
    page.goto(f"{base_url}/live/?{urlencode({'vhost': vhost, **filters})}")
    expect(page.get_by_test_id("connection-state")).to_have_text("live")
    expect(page.get_by_test_id("tap-state")).to_have_text("tap: running", timeout=15_000)
    expect(page.get_by_test_id("tap-mode")).to_have_text("firehose")


def rows(page: Page):
    return page.get_by_test_id("feed").locator(".live-row")


def test_a_published_message_appears_with_its_routed_queues(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    # How soon it appears is measured by benchmarks/live_bench.py.
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost)
    publisher.publish("food", "food.pizza", b'{"topping": "basil"}')
    row = rows(page).filter(has_text="food.pizza").filter(has_text="publish")
    expect(row).to_have_count(1, timeout=30_000)
    expect(row.locator(".queue-chip")).to_have_text(["all-food", "pizza"])
    expect(page.locator('[data-counter="shown"]')).not_to_have_text("0")


def test_a_message_published_through_the_form_appears(
    signed_in_page: Page, live_dashboard, food_vhost, watcher
):
    give_role(watcher, "publisher")
    live = signed_in_page
    open_live(live, live_dashboard.url, food_vhost, kind="publish")
    form = live.context.new_page()
    form.goto(f"{live_dashboard.url}/publish/?{urlencode({'vhost': food_vhost})}")
    form.get_by_label("Exchange").fill("food")
    form.get_by_label("Body", exact=True).fill('{"slice": 1}')

    form.get_by_label("Routing key").fill("food.pizza")
    form.get_by_role("button", name="Publish", exact=True).click()
    expect(form.get_by_test_id("publish-result").get_by_test_id("outcome-confirm")).to_have_text(
        "confirmed"
    )
    row = rows(live).filter(has_text="food.pizza")
    expect(row).to_have_count(1, timeout=30_000)
    expect(row.locator(".queue-chip")).to_have_text(["all-food", "pizza"])


def test_a_filter_given_in_the_url_is_applied(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost, routing_key="*.soup", kind="publish")
    expect(page.get_by_label("routing key")).to_have_value("*.soup")
    publisher.publish("food", "food.pizza")
    publisher.publish("food", "food.soup")  # the marker: a shown food.pizza would come first
    expect(rows(page).filter(has_text="food.soup")).to_have_count(1)
    expect(rows(page)).to_have_count(1)
    expect(page.locator('[data-counter="filtered_out"]')).not_to_have_text("0")

    # Changing the filter in the form updates the URL and reconnects with it.
    page.get_by_label("routing key").fill("food.pizza")
    page.get_by_role("button", name="Apply").click()
    query = urlencode({"vhost": food_vhost, "routing_key": "food.pizza", "kind": "publish"})
    expect(page).to_have_url(f"{live_dashboard.url}/live/?{query}")
    expect(page.get_by_test_id("connection-state")).to_have_text("live")
    publisher.publish("food", "food.soup")
    publisher.publish("food", "food.pizza")  # the marker: a shown food.soup would come first
    expect(rows(page).filter(has_text="food.pizza")).to_have_count(1)
    expect(rows(page)).to_have_count(2)


def test_an_invalid_filter_is_shown_next_to_its_field(
    signed_in_page: Page, live_dashboard, food_vhost
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost)
    page.get_by_label("header").fill("=oops")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#filter-error-header")).to_contain_text("write key=value")
    expect(page.get_by_test_id("connection-state")).to_contain_text("fix the filter")


def test_pause_holds_rows_and_resume_says_how_many_arrived(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost, kind="publish")
    page.get_by_role("button", name="Pause").click()
    for n in range(3):
        publisher.publish("food", f"food.item{n}")
    expect(page.get_by_test_id("paused-note")).to_have_text("paused: 3 arrived")
    expect(rows(page)).to_have_count(0)
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_test_id("paused-note")).to_have_text("3 arrived while paused")
    expect(rows(page)).to_have_count(3)
    expect(rows(page).first).to_contain_text("food.item2")  # newest first

    # Space pauses too; clear empties the feed.
    page.keyboard.press(" ")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    page.keyboard.press(" ")
    page.get_by_role("button", name="Clear").click()
    expect(rows(page)).to_have_count(0)


def test_an_unroutable_message_is_shown_as_such(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost, kind="publish")
    publisher.publish("nowhere", "no.binding")
    row = rows(page).filter(has_text="no.binding")
    expect(row.locator(".unroutable")).to_have_text("UNROUTABLE")
    expect(row).to_have_class("live-row kind-publish is-unroutable")
    expect(row.locator(".predicted")).to_have_count(0)  # the firehose knows; nothing predicted


def test_script_and_img_in_a_message_render_as_text_and_run_nothing(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost, kind="publish")
    key = "<script>window.pwned=1</script>"
    header = "<img src=x onerror=window.pwned=2>"
    body = b'{"html": "<img src=x onerror=window.pwned=3>", "s": "<script>window.pwned=4</script>"}'
    publisher.publish("food", key, body, headers={"h": header}, content_type="application/json")
    row = rows(page).filter(has_text=key)
    expect(row).to_have_count(1)
    row.click()
    details = page.get_by_test_id("message-details")
    expect(details.get_by_test_id("details-headers")).to_contain_text(header)
    expect(details.get_by_test_id("details-body")).to_contain_text(
        "<img src=x onerror=window.pwned=3>"
    )
    expect(details).to_contain_text(key)
    assert page.evaluate("window.pwned") is None
    assert (
        page.locator("#feed img, #live-details img, #feed script, #live-details script").count()
        == 0
    )


def test_a_pickled_celery_task_is_shown_decoded_next_to_its_raw_body(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost, kind="publish")
    # What Celery publishes with kombu's pickle serializer (protocol 2), written by hand: the
    # real app's messages are tested in tests/decoding/test_real_celery.py.
    body = pickle.dumps(((2, 3), {"z": "<b>1</b>"}, {"callbacks": None}), protocol=4)
    publisher.publish(
        "food",
        "food.celery",
        body,
        content_type="application/x-python-serialize",
        content_encoding="binary",
        headers={"task": "proj.tasks.add", "id": "t-4711", "retries": 0, "lang": "py"},
    )
    row = rows(page).filter(has_text="food.celery")
    expect(row).to_have_count(1)
    row.click()
    card = page.get_by_test_id("message-details").get_by_test_id("celery-task")
    expect(card.locator('[data-field="task"]')).to_have_text("proj.tasks.add")
    expect(card.locator('[data-field="id"]')).to_have_text("t-4711")
    expect(card.locator('[data-field="args"]')).to_have_text("(2, 3)")
    expect(card.locator('[data-field="kwargs"]')).to_have_text("{'z': '<b>1</b>'}")
    expect(page.get_by_test_id("details-body")).to_contain_text("00000000  80 04 95")
    assert page.locator("#live-details b").count() == 0


def test_the_page_reconnects_after_the_server_closes_the_socket(
    page: Page, live_dashboard, watcher, food_vhost, publisher
):
    port = free_port()
    proxy = TcpProxy(target_port=live_dashboard.port, listen_port=port)
    proxy.start()
    base = f"http://127.0.0.1:{port}"
    try:
        sign_in_with_a_session(page, base, watcher)
        open_live(page, base, food_vhost, kind="publish")
        proxy.stop()  # every connection cut: the browser sees the socket drop
        expect(page.get_by_test_id("connection-state")).to_have_text("reconnecting…")
        proxy = TcpProxy(target_port=live_dashboard.port, listen_port=port)
        proxy.start()
        expect(page.get_by_test_id("connection-state")).to_have_text("live", timeout=10_000)
        publisher.publish("food", "food.after-reconnect")
        expect(rows(page).filter(has_text="food.after-reconnect")).to_have_count(1)
    finally:
        proxy.stop()


def test_the_graph_draws_each_message_along_its_routed_queues(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost)
    page.get_by_role("button", name="Graph").click()
    expect(page.locator("#live-graph-mode")).to_have_text("each message is drawn along its route")
    page.evaluate(
        """() => {
          window.drawn = [];
          const graph = window.flowsLiveGraph;
          for (const name of ["animateRoute", "animateDelivery"]) {
            const original = graph[name];
            graph[name] = (arg) => { window.drawn.push([name, arg]); return original(arg); };
          }
        }"""
    )
    publisher.publish("food", "food.pizza")
    publisher.publish("nowhere", "lost")
    page.wait_for_function("() => window.drawn.length >= 2")
    drawn = page.evaluate("window.drawn")
    routes = {arg["exchange"]: arg for name, arg in drawn if name == "animateRoute"}
    assert sorted((hop["source"], hop["destination"]) for hop in routes["food"]["hops"]) == [
        ("food", "all-food"),
        ("food", "pizza"),
    ]
    assert routes["food"]["unroutable"] is False
    assert routes["nowhere"] == {"exchange": "nowhere", "hops": [], "unroutable": True}


def test_a_delivery_names_its_consumer_and_the_consumption_panel_shows_it(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    parameters = connection_parameters(vhost=food_vhost, purpose="test-worker")
    # A client that does not name its connection: its consumer goes by its tag. (Named ones
    # go by the name: tests/browser/test_demo_page.py.)
    parameters.client_properties = {}
    worker = pika.BlockingConnection(parameters)
    try:
        channel = worker.channel()
        channel.basic_qos(prefetch_count=2)
        channel.basic_consume(
            "pizza", lambda ch, method, *_: ch.basic_ack(method.delivery_tag), consumer_tag="oven-1"
        )
        page = signed_in_page
        open_live(page, live_dashboard.url, food_vhost, kind="deliver", queue="pizza")
        # The consumer's tag comes from the management API, which may list a new consumer a
        # moment late: the first deliveries can name only its connection and channel.
        named = rows(page).locator(".deliver-to", has_text="→ oven-1")

        def a_delivery_named_the_consumer() -> bool:
            publisher.publish("food", "food.pizza")
            worker.process_data_events(0.5)  # the worker takes (and acks) it meanwhile
            return named.count() > 0

        eventually(a_delivery_named_the_consumer, what="a delivery row naming oven-1", timeout=30)
        expect(named.first).to_be_visible()
        expect(rows(page).first).to_contain_text("deliver")
        consumers = page.get_by_test_id("consumption-consumers")
        expect(consumers).to_contain_text("oven-1", timeout=10_000)
        expect(page.get_by_test_id("consumption-queues")).to_contain_text("all-food")
    finally:
        worker.close()


def test_export_downloads_the_rows_as_json_lines(
    signed_in_page: Page, live_dashboard, food_vhost, publisher
):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost, kind="publish")
    for n in range(3):
        publisher.publish("food", f"food.export{n}", b'{"n": %d}' % n)
    expect(rows(page)).to_have_count(3)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSONL").click()
    lines = Path(download.value.path()).read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [event["routing_key"] for event in events] == [f"food.export{n}" for n in range(3)]
    assert all(event["routed_queues"] == ["all-food"] for event in events)


def test_keyboard_shortcuts_and_presenter_mode(signed_in_page: Page, live_dashboard, food_vhost):
    page = signed_in_page
    open_live(page, live_dashboard.url, food_vhost)
    page.keyboard.press("/")
    expect(page.get_by_label("exchange")).to_be_focused()
    page.keyboard.type(" ")  # typing in a field does not pause
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.get_by_label("exchange").blur()
    page.get_by_role("button", name="Presenter").click()
    expect(page.locator("html")).to_have_class(re.compile(r"(^|\s)presenter(\s|$)"))
    font_size = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert font_size >= 20
    expect(page.get_by_test_id("connection-state")).to_be_visible()
    expect(page.locator('[data-counter="total"]')).to_be_visible()


def test_a_user_who_may_switch_the_firehose_on_is_offered_it_as_one_button(
    signed_in_page: Page, live_dashboard, scratch_vhost, watcher
):
    from tests.support.accounts import give_role

    give_role(watcher, "admin")  # the role that may switch the firehose on
    page = signed_in_page
    page.goto(f"{live_dashboard.url}/live/?{urlencode({'vhost': scratch_vhost})}")
    expect(page.get_by_test_id("tap-mode")).to_have_text("bindings", timeout=15_000)
    page.get_by_test_id("firehose-offer").click()
    expect(page.get_by_test_id("tap-mode")).to_have_text("firehose", timeout=15_000)
    assert "mode=firehose" in page.url
    expect(page.get_by_test_id("firehose-offer")).to_have_count(0)


def test_a_user_who_may_not_is_offered_nothing(signed_in_page: Page, live_dashboard, scratch_vhost):
    page = signed_in_page
    page.goto(f"{live_dashboard.url}/live/?{urlencode({'vhost': scratch_vhost})}")
    expect(page.get_by_test_id("tap-mode")).to_have_text("bindings", timeout=15_000)
    expect(page.get_by_test_id("firehose-offer")).to_be_hidden()


def test_publish_again_and_edit_and_publish_from_the_details(
    signed_in_page: Page, live_dashboard, food_vhost, publisher, watcher
):
    from tests.support.accounts import give_role

    give_role(watcher, "publisher")
    page = signed_in_page
    key = f"food.again-{uuid.uuid4().hex[:6]}"
    open_live(page, live_dashboard.url, food_vhost, kind="publish", routing_key=key)
    publisher.publish("food", key, b'{"n":1}', headers={"attempt": 3}, message_id="m-again")
    rows(page).first.click()
    details = page.get_by_test_id("message-details")
    details.get_by_test_id("publish-again").click()
    expect(details.get_by_test_id("outcome-confirm")).to_have_text("confirmed")
    expect(details.get_by_test_id("outcome-message-id")).to_have_text("m-again")
    expect(rows(page)).to_have_count(2, timeout=30_000)  # the tap saw it published again

    with page.context.expect_page() as opened:
        details.get_by_test_id("edit-and-publish").click()
    form = opened.value
    expect(form.get_by_label("Routing key")).to_have_value(key)
    expect(form.get_by_label("Message id")).to_have_value("m-again")
    expect(form.get_by_label("Header value").first).to_have_value("3")
    expect(form.get_by_label("Header type").first).to_have_value("int32")
    form.get_by_role("button", name="Publish", exact=True).click()
    expect(form.get_by_test_id("outcome-confirm")).to_have_text("confirmed")
    expect(rows(page)).to_have_count(3, timeout=30_000)
