"""The README's run path: `manage.py serve` prints a one-time link that signs the speaker in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.live_server import free_port, start_first_run, wait_for_port

pytestmark = pytest.mark.browser


def run_serve(tmp_path: Path, port: int, **env: str) -> tuple[subprocess.Popen, Path]:
    return start_first_run(
        [sys.executable, "manage.py", "serve", "--port", str(port)], tmp_path, **env
    )


def test_first_start_prints_a_one_time_link_that_signs_in(page: Page, tmp_path: Path):
    port = free_port()
    process, log = run_serve(tmp_path, port)
    try:
        wait_for_port(port, timeout=60, process=process)
        match = re.search(rf"(http://127\.0\.0\.1:{port}/accounts/link/[\w-]+/)", log.read_text())
        assert match, log.read_text()
        page.goto(match.group(1))
        expect(page).to_have_url(f"http://127.0.0.1:{port}/")
        expect(page.get_by_test_id("signed-in-user")).to_have_text("speaker")
        expect(page.get_by_test_id("rabbitmq-version")).not_to_be_empty()
        # The link is spent.
        page.context.clear_cookies()
        page.goto(match.group(1))
        expect(page.locator(".flash")).to_contain_text("expired or was already used")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_without_a_broker_it_says_how_to_get_one_and_exits_non_zero(tmp_path: Path):
    closed = free_port()
    process, log = run_serve(
        tmp_path,
        free_port(),
        AMQP_URL=f"amqp://guest:amqp-s3cret@127.0.0.1:{closed}/",
        RABBITMQ_API_URL=f"http://127.0.0.1:{closed}/",
    )
    assert process.wait(timeout=60) != 0  # gives up, rather than retrying for ever
    output = log.read_text()
    assert f"RabbitMQ management API unreachable at 127.0.0.1:{closed}" in output
    assert "docker compose up" in output and "rabbitmq-plugins enable rabbitmq_management" in output
    assert "s3cret" not in output


def test_serve_demo_loads_the_scenario_runs_it_and_links_straight_to_its_page(
    page: Page, tmp_path: Path
):
    """The speaker's one command: `serve --demo topics` loads the scenario, starts its
    publishers and workers, and its sign-in link opens the scenario's page, messages flowing."""
    vhost = f"test-serve-demo-{uuid.uuid4().hex[:8]}"
    port = free_port()
    process, log = start_first_run(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--port",
            str(port),
            "--demo",
            "topics",
            "--demo-vhost",
            vhost,
        ],
        tmp_path,
    )
    try:
        wait_for_port(port, timeout=60, process=process)
        output = log.read_text()
        assert f"loaded 'topics' into new vhost '{vhost}'" in output, output
        match = re.search(rf"(http://127\.0\.0\.1:{port}/accounts/link/[\w-]+/\?next=\S+)", output)
        assert match, output
        page.goto(match.group(1))
        expect(page).to_have_url(re.compile(rf"/demo/topics/\?vhost={vhost}$"))
        expect(page.get_by_test_id("demo-run-state")).to_have_text("running", timeout=20_000)
        feed = page.get_by_test_id("feed")
        expect(feed.locator(".live-row.kind-deliver").first).to_be_visible(timeout=30_000)
    finally:
        process.terminate()
        process.wait(timeout=20)
        subprocess.run(
            [sys.executable, "manage.py", "demo", "unload", "topics", "--vhost", vhost],
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "FLOWS_STATE_DIR": str(tmp_path / "state"), "DATABASE_URL": ""},
            check=True,
            capture_output=True,
        )


def test_an_outside_next_is_not_followed(page: Page, tmp_path: Path):
    port = free_port()
    process, log = run_serve(tmp_path, port)
    try:
        wait_for_port(port, timeout=60, process=process)
        match = re.search(rf"(http://127\.0\.0\.1:{port}/accounts/link/[\w-]+/)", log.read_text())
        assert match, log.read_text()
        page.goto(match.group(1) + "?next=https://evil.example/")
        expect(page).to_have_url(f"http://127.0.0.1:{port}/")
    finally:
        process.terminate()
        process.wait(timeout=10)
