"""`manage.py demo` on the real broker: list, load, unload, and a short headless run."""

from __future__ import annotations

import io
import os
import re
import signal
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from flows.broker.errors import BrokerNotFound
from flows.broker.management_api import ManagementClient
from flows.demo import scenario as scenario_module
from flows.models import DemoLoad
from tests.demo.test_scenario import MINIMAL

pytestmark = pytest.mark.django_db


def demo(*args: str) -> str:
    out = io.StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


def test_list_load_and_unload(management_client: ManagementClient, demo_vhost: str) -> None:
    listed = demo("list")
    for name in ("topics", "events", "belery", "mailer", "failures"):
        assert f"{name} " in listed
    assert "Belery: a task queue" in listed and "not loaded" in listed
    assert "into new vhost" in demo("load", "events", "--vhost", demo_vhost)
    assert f"events     Events: UserLoggedIn, fanned out  [{demo_vhost}]" in demo("list")
    assert "already loaded" in demo("load", "events", "--vhost", demo_vhost)
    assert f"deleted vhost '{demo_vhost}'" in demo("unload", "events", "--vhost", demo_vhost)
    with pytest.raises(BrokerNotFound):
        management_client.vhost(demo_vhost)
    assert "nothing to unload" in demo("unload", "events", "--vhost", demo_vhost)


def test_list_names_every_mistake_of_a_bad_file_and_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "good.toml").write_text(MINIMAL)
    (tmp_path / "bad.toml").write_text(MINIMAL.replace('type = "topic"', 'type = "tpoic"'))
    monkeypatch.setattr(scenario_module, "SCENARIO_DIR", tmp_path)
    out = io.StringIO()
    with pytest.raises(CommandError, match="invalid scenario files: bad"):
        call_command("demo", "list", stdout=out)
    assert "bad        INVALID (bad.toml):" in out.getvalue()
    assert "exchanges[0].type: must be one of" in out.getvalue()
    assert "good       t  [not loaded]" in out.getvalue()


def test_an_unknown_scenario_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match=r"no scenario named 'nope' \(available: belery"):
        demo("load", "nope")


def test_a_refused_load_is_a_clear_error(
    management_client: ManagementClient, scratch_vhost: str
) -> None:
    management_client.declare_exchange(scratch_vhost, "food", exchange_type="direct")
    with pytest.raises(CommandError, match="already has an exchange 'food'"):
        demo("load", "topics", "--vhost", scratch_vhost)


def test_run_prints_what_went_where_and_unloads_what_it_loaded(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    out = demo("run", "topics", "--seconds", "2", "--vhost", demo_vhost)
    assert "loaded 'topics' into new vhost" in out
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]
    cells = {row[0]: row[1:] for row in rows if len(row) > 1}
    # publisher: published, unroutable, nacked
    assert int(cells["food app"][0]) >= 2  # 1 a second for 2 s
    published, unroutable, _nacked = cells["drinks app"]
    assert int(published) >= 1 and unroutable == published  # drinks.coffee matches nothing
    # queue: expected, arrived, consumed, redelivered, requeued, dead-lettered, left
    for queue in ("all-food", "all-icecream", "deserts-icecream-only"):
        expected, arrived, consumed, *_rest, left = map(int, cells[queue])
        assert expected == arrived == consumed > 0 and left == 0, (queue, cells[queue])
    # worker: queue, deliveries, acked, ...
    assert cells["food lover 1"][:1] == ["all-food"]
    assert "errors" not in out
    assert out.rstrip().endswith(f"deleted vhost '{demo_vhost}', which it created")
    assert not DemoLoad.objects.exists()
    with pytest.raises(BrokerNotFound):
        management_client.vhost(demo_vhost)


def test_run_keeps_a_scenario_it_found_loaded(
    management_client: ManagementClient, demo_vhost: str
) -> None:
    demo("load", "mailer", "--vhost", demo_vhost)
    out = demo("run", "mailer", "--seconds", "0", "--vhost", demo_vhost)
    assert "already loaded" in out and "unloaded" not in out
    assert management_client.find_queue(demo_vhost, "webapp.replies") is not None
    demo("unload", "mailer", "--vhost", demo_vhost)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_cleanly(
    management_client: ManagementClient, demo_vhost: str, signum: int
) -> None:
    before = signal.getsignal(signum)
    started = threading.Event()

    class Watch(io.StringIO):
        def write(self, text: str) -> int:
            if "running for" in text:
                started.set()
            return super().write(text)

    def interrupt() -> None:
        if started.wait(30):
            os.kill(os.getpid(), signum)

    sender = threading.Thread(target=interrupt)
    sender.start()
    out = Watch()
    call_command("demo", "run", "belery", "--seconds", "120", "--vhost", demo_vhost, stdout=out)
    sender.join()
    text = out.getvalue()
    assert "belery worker 3" in text and "deleted vhost" in text
    # Stopped by the signal, not by the end of its 120 s (the kernel may hand the signal to
    # any of the run's threads; the command must notice it anyway).
    [ran] = re.findall(rf"vhost '{demo_vhost}', ([0-9.]+) s", text)
    assert float(ran) < 60
    assert signal.getsignal(signum) is before
    with pytest.raises(BrokerNotFound):
        management_client.vhost(demo_vhost)
