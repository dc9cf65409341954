"""A scenario page in a real browser at projector size, on the real broker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from flows.broker.errors import BrokerNotFound
from flows.broker.management_api import ManagementClient
from flows.demo.loading import unload
from tests.browser.test_live import sign_in_with_a_session
from tests.support.accounts import make_user

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1920, "height": 1080}}


@pytest.fixture
def demo_vhost(management_client: ManagementClient) -> Iterator[str]:
    name = f"flows-test-demo-{uuid.uuid4().hex[:10]}"
    yield name
    # The dashboard's run stops when the page's Stop is pressed; unloading deletes the vhost,
    # which closes whatever connection of it is still open.
    with contextlib.suppress(BrokerNotFound):
        unload("topics", vhost=name, client=management_client)
    with contextlib.suppress(BrokerNotFound):
        management_client.remove_vhost(name)


@pytest.fixture
def speaker(transactional_db: None):
    """An admin: loads scenarios and watches them with the firehose."""
    return make_user("speaker", role="admin")


def test_load_topics_start_it_and_watch_a_message_reach_a_consumer(
    page: Page, live_dashboard, speaker, demo_vhost
):
    sign_in_with_a_session(page, live_dashboard.url, speaker)
    page.goto(f"{live_dashboard.url}/demo/topics/?{urlencode({'vhost': demo_vhost})}")
    expect(page.get_by_test_id("demo-watch")).to_contain_text("food.icecream goes to two")
    page.get_by_role("button", name="Load it").click()

    expect(page.get_by_test_id("connection-state")).to_have_text("live")
    expect(page.get_by_test_id("tap-mode")).to_have_text("firehose", timeout=15_000)
    expect(page.get_by_test_id("live-graph").locator("canvas").first).to_be_visible()
    graph_box = page.get_by_test_id("live-graph").bounding_box()
    feed_box = page.locator(".live-feed-wrap").bounding_box()
    assert graph_box and feed_box
    assert feed_box["x"] >= graph_box["x"] + graph_box["width"]  # beside the graph
    assert graph_box["width"] >= 1000

    page.get_by_role("button", name="Start workers and publishers").click()
    expect(page.get_by_test_id("demo-run-state")).to_have_text("running", timeout=20_000)

    feed = page.get_by_test_id("feed")
    published = feed.locator(".live-row.kind-publish").filter(has_text="food.pizza")
    expect(published.first).to_be_visible(timeout=30_000)
    # A delivery names its consumer as the worker named its connection, not by its tag.
    delivered = feed.locator(".live-row.kind-deliver").filter(has_text="all-food")
    expect(delivered.filter(has_text="food lover 1").first).to_be_visible(timeout=30_000)
    # And so does the graph's consumer node.
    page.wait_for_function(
        """() => window.flowsLiveGraph && window.flowsLiveGraph.search("food lover 1")
            .some((hit) => hit.kind === "consumer")""",
        timeout=30_000,
    )

    # The counters follow the run without a reload.
    expect(page.get_by_test_id("published").first).not_to_have_text("0", timeout=15_000)
    page.get_by_role("button", name="Stop all").click()
    expect(page.get_by_test_id("demo-run-state")).to_have_text("stopped", timeout=20_000)
