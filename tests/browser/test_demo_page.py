"""A scenario page in a real browser at projector size, on the real broker."""

from __future__ import annotations

import contextlib
import re
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


def open_loaded(page: Page, base_url: str, user, vhost: str) -> None:
    """The topics page, loaded and watched through the firehose, its graph drawn."""
    sign_in_with_a_session(page, base_url, user)
    page.goto(f"{base_url}/demo/topics/?{urlencode({'vhost': vhost})}")
    page.get_by_role("button", name="Load it").click()
    expect(page.get_by_test_id("tap-state")).to_have_text("tap: running")
    expect(page.get_by_test_id("tap-mode")).to_have_text("firehose")
    page.wait_for_function("() => window.flowsLiveGraph && window.flowsLiveGraph.cy.nodes().length")


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


PRESENTER = re.compile(r"(^|\s)presenter(\s|$)")

# The smallest label cytoscape draws, in CSS pixels on screen: its font size times the zoom.
SMALLEST_LABEL_PX = """() => {
  const cy = window.flowsLiveGraph.cy;
  const sizes = cy.elements().filter((e) => !e.hasClass("dot") && e.data("label"))
    .map((e) => e.numericStyle("font-size") * cy.zoom());
  return sizes.length ? Math.min(...sizes) : 0;
}"""

# WCAG's contrast ratio of the page's text on its background.
TEXT_CONTRAST = """() => {
  const rgb = (css) => css.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const linear = (v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  const lum = (css) => {
    const [r, g, b] = rgb(css).map((v) => linear(v / 255));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const style = getComputedStyle(document.body);
  const [a, b] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_presenter_mode_fills_the_screen_steps_one_message_per_key_and_slows_down(
    page: Page, live_dashboard, speaker, demo_vhost
):
    open_loaded(page, live_dashboard.url, speaker, demo_vhost)
    page.get_by_role("button", name="Presenter").click()
    expect(page.locator("html")).to_have_class(PRESENTER)

    # The graph fills the screen, and every label is at least 24 px on it.
    page.wait_for_function(f"() => ({SMALLEST_LABEL_PX})() >= 24")
    graph_box = page.get_by_test_id("live-graph").bounding_box()
    assert graph_box and graph_box["width"] >= 1300 and graph_box["height"] >= 800
    expect(page.get_by_test_id("demo-controls")).to_be_hidden()

    # Each → publishes exactly one message from the scenario's publisher.
    published = page.get_by_test_id("feed").locator(".live-row.kind-publish")
    counter = page.get_by_test_id("published").first  # food app's
    for count in (1, 2):
        page.keyboard.press("ArrowRight")
        expect(published).to_have_count(count)
        expect(published.first).to_contain_text("food.")
        expect(counter).to_have_text(str(count))
    expect(page.get_by_test_id("demo-held")).to_be_attached()

    # Slow motion: each hop of a dot (>= 600 ms at normal speed) takes four times as long.
    hop_ms = "() => window.flowsLiveGraph.hopMs"
    assert page.evaluate(hop_ms) >= 600
    normal = page.evaluate(hop_ms)
    page.keyboard.press("s")
    expect(page.get_by_test_id("presenter-slow")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate(hop_ms) == 4 * normal
    page.keyboard.press("s")
    assert page.evaluate(hop_ms) == normal

    # High contrast in light (the system's choice here) and in dark (`t`).
    html = page.locator("html")
    for theme in ("presenter-light", "presenter-dark"):
        expect(html).to_have_class(re.compile(rf"(^|\s){theme}(\s|$)"))
        assert page.evaluate(TEXT_CONTRAST) >= 12
        page.keyboard.press("t")

    page.keyboard.press("Escape")
    expect(html).not_to_have_class(PRESENTER)
    expect(page.get_by_test_id("demo-controls")).to_be_visible()
    page.get_by_role("button", name="Stop all").click()
    expect(page.get_by_test_id("demo-run-state")).to_have_text("stopped", timeout=20_000)


def test_the_status_chip_folds_the_notices_and_the_composer_publishes(
    page: Page, live_dashboard, speaker, demo_vhost
):
    open_loaded(page, live_dashboard.url, speaker, demo_vhost)
    # The firehose's notices are behind one chip, which opens on a click.
    toggle = page.get_by_test_id("status-chip-toggle")
    panel = page.get_by_test_id("status-chip-panel")
    expect(toggle).to_have_text(re.compile(r"^\d+ notices?$"))
    expect(panel).to_be_hidden()
    toggle.click()
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Tracing (the firehose) is on")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    composer = page.get_by_test_id("demo-composer")
    composer.get_by_label("Routing key").fill("food.icecream")
    composer.get_by_role("button", name="Publish").click()
    result = page.get_by_test_id("publish-result")
    expect(result.get_by_test_id("outcome-route")).to_have_text("routed")
    expect(result.get_by_test_id("predicted-queues")).to_contain_text("all-food")
    expect(result.get_by_test_id("predicted-queues")).to_contain_text("all-icecream")
    feed = page.get_by_test_id("feed")
    expect(feed.locator(".live-row.kind-publish").filter(has_text="food.icecream")).to_have_count(1)
