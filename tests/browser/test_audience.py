"""An audience link in real browsers: made on the scenario page at projector size, opened on a
phone-sized page with no cookies, which sees the live graph and a message arrive, and is
refused a publish and another vhost."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_live import sign_in_with_a_session
from tests.support.publishing import grant_publish
from tests.support.tap_harness import amqp_channel

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1920, "height": 1080}}


def test_an_audience_link_shows_the_live_view_and_nothing_more(
    page: Page, browser: Browser, live_dashboard, transactional_db, link_maker, loaded_topics
):
    grant_publish(link_maker)
    sign_in_with_a_session(page, live_dashboard.url, link_maker)
    page.goto(f"{live_dashboard.url}/demo/topics/?{urlencode({'vhost': loaded_topics})}")
    panel = page.get_by_test_id("demo-audience")
    panel.locator("summary").click()  # folded until opened
    panel.get_by_label("How long the audience link works").select_option("1h")
    panel.get_by_role("button", name="Create audience link").click()
    url = page.get_by_test_id("audience-url").inner_text().strip()
    assert url.startswith(f"{live_dashboard.url}/watch/")
    expect(panel.get_by_role("button", name="Revoke")).to_have_count(1)
    token = url.rstrip("/").rsplit("/", 1)[1]

    audience = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        phone = audience.new_page()
        phone.goto(url)
        assert phone.url == url  # no sign-in redirect
        expect(phone.get_by_test_id("live-vhost")).to_have_text(loaded_topics)
        expect(phone.get_by_test_id("connection-state")).to_have_text("live")
        expect(phone.get_by_test_id("live-graph").locator("canvas").first).to_be_visible()
        expect(phone.get_by_test_id("tap-state")).to_have_text("tap: running", timeout=30_000)
        # A phone: the graph above the feed, and nothing wider than the screen.
        graph = phone.get_by_test_id("live-graph").bounding_box()
        feed = phone.locator(".live-feed-wrap").bounding_box()
        assert graph and feed and feed["y"] >= graph["y"] + graph["height"]
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        expect(phone.locator("nav, select, #live-filters, #demo-controls, a")).to_have_count(0)

        with amqp_channel(loaded_topics) as channel:
            channel.basic_publish("food", "food.pizza", b'{"slice": 1}')
        row = phone.get_by_test_id("feed").locator(".live-row").filter(has_text="food.pizza")
        expect(row.first).to_be_visible(timeout=30_000)

        # The same browser may not publish, nor see another vhost, by any door.
        publish = phone.request.post(
            f"{live_dashboard.url}/api/publish",
            data=json.dumps(
                {"vhost": loaded_topics, "exchange": "food", "routing_key": "food.pizza"}
            ),
            headers={"Content-Type": "application/json"},
        )
        assert publish.status == 401
        other = phone.request.get(f"{live_dashboard.url}/watch/{token}/topology?vhost=%2F")
        assert other.status == 403
        assert (
            other.json()["fields"]["vhost"]
            == f"This audience link shows vhost {loaded_topics!r} only"
        )
        ws_url = live_dashboard.url.replace("http", "ws", 1)
        close_code = phone.evaluate(
            """(url) => new Promise((resolve) => {
                const socket = new WebSocket(url);
                socket.onclose = (event) => resolve(event.code);
            })""",
            f"{ws_url}/ws/live/?vhost=%2F&audience={quote(token)}",
        )
        assert close_code == 4403

        # Revoked from the scenario page: the phone's socket closes and says why.
        panel.get_by_role("button", name="Revoke").click()
        expect(page.get_by_test_id("audience-revoked")).to_be_visible()
        expect(phone.get_by_test_id("connection-state")).to_have_text(
            "closed: this audience link has expired or was revoked"
        )
        expect(phone.get_by_test_id("tap-state").locator("..")).to_contain_text("was revoked")
        phone.reload()
        expect(phone.get_by_test_id("audience-ended")).to_contain_text("was revoked")
    finally:
        audience.close()
