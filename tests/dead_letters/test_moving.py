"""Reading and moving dead letters on the real broker: a read loses nothing, a move back
delivers each message exactly once to its origin, and a move killed midway loses none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest

from flows.dead_letters.grouping import Origin, Selection
from flows.dead_letters.moving import MoveTarget, move_messages
from flows.dead_letters.reading import CannotRead, read_dead_letters
from tests.support.dead_letters import EXPIRED, REJECTED, Shop
from tests.support.live_server import REPO_ROOT, database_url_for
from tests.support.waiting import StopWaiting, eventually


def test_a_read_groups_by_reason_and_origin_and_leaves_the_queue_as_it_was(
    dlq_shop: Shop, fresh_runtime
) -> None:
    before = dlq_shop.peek("shop.dead")
    snapshot = read_dead_letters(dlq_shop.vhost, "shop.dead")
    assert [(g.origin, g.messages) for g in snapshot.groups] == [
        (Origin("rejected", "orders", "shop", ("order",)), REJECTED),
        (Origin("expired", "orders.delay", "shop", ("later",)), EXPIRED),
    ]
    assert not snapshot.partial
    assert dlq_shop.peek("shop.dead") == before  # every message back, in its place


def test_a_read_is_bounded(dlq_shop: Shop, fresh_runtime) -> None:
    snapshot = read_dead_letters(dlq_shop.vhost, "shop.dead", limit=5)
    assert len(snapshot.letters) == 5 and snapshot.partial
    assert dlq_shop.depth("shop.dead") == REJECTED + EXPIRED


def test_an_unknown_queue_is_said_plainly(scratch_vhost: str, fresh_runtime) -> None:
    with pytest.raises(CannotRead, match="no queue 'nope'"):
        read_dead_letters(scratch_vhost, "nope")


def test_moving_back_delivers_each_message_exactly_once_to_its_origin(dlq_shop: Shop) -> None:
    progress = move_messages(
        vhost=dlq_shop.vhost,
        queue="shop.dead",
        target=MoveTarget(),
        selection=Selection(reason="rejected", queue="orders"),
    )
    assert (progress.state, progress.moved, progress.skipped) == ("done", REJECTED, EXPIRED)
    assert dlq_shop.drain("orders") == list(dlq_shop.rejected_ids)  # once each, in order
    assert sorted(dlq_shop.drain("shop.dead")) == sorted(dlq_shop.expired_ids)


def test_moving_to_an_exchange_and_key(dlq_shop: Shop) -> None:
    progress = move_messages(
        vhost=dlq_shop.vhost,
        queue="shop.dead",
        target=MoveTarget("shop", "held"),
        selection=Selection(reason="expired"),
    )
    assert (progress.state, progress.moved) == ("done", EXPIRED)
    assert dlq_shop.drain("holding") == list(dlq_shop.expired_ids)
    assert dlq_shop.depth("shop.dead") == REJECTED


def test_a_return_stops_the_move_and_leaves_the_message_in_the_queue(dlq_shop: Shop) -> None:
    progress = move_messages(
        vhost=dlq_shop.vhost, queue="shop.dead", target=MoveTarget("shop", "nowhere")
    )
    assert (progress.state, progress.moved) == ("error", 0)
    assert "routes the message to no queue" in (progress.error or "")
    assert dlq_shop.depth("shop.dead") == REJECTED + EXPIRED


def test_a_target_outside_the_allow_list_is_refused(dlq_shop: Shop) -> None:
    progress = move_messages(
        vhost=dlq_shop.vhost,
        queue="shop.dead",
        target=MoveTarget(),
        allowed_patterns=["demo.*"],
    )
    assert (progress.state, progress.moved) == ("error", 0)
    assert "not allowed here" in (progress.error or "")
    assert dlq_shop.depth("shop.dead") == REJECTED + EXPIRED


def test_a_cancelled_move_loses_and_doubles_nothing(dlq_shop: Shop) -> None:
    cancel = threading.Event()

    def cancel_after_five(progress) -> None:
        if progress.moved == 5:
            cancel.set()

    progress = move_messages(
        vhost=dlq_shop.vhost,
        queue="shop.dead",
        target=MoveTarget(),
        selection=Selection(reason="rejected"),
        cancel=cancel,
        on_moved=cancel_after_five,
    )
    assert (progress.state, progress.moved) == ("cancelled", 5)
    moved, left = dlq_shop.drain("orders"), dlq_shop.drain("shop.dead")
    assert moved == list(dlq_shop.rejected_ids[:5])
    assert sorted(left) == sorted(dlq_shop.rejected_ids[5:] + dlq_shop.expired_ids)


@pytest.mark.django_db(transaction=True)
def test_a_move_killed_midway_loses_no_message_and_duplicates_at_most_one(dlq_shop: Shop) -> None:
    from django.db import connection

    from flows.models import MessageMove

    env = {
        **os.environ,
        "DATABASE_URL": database_url_for(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = tempfile.NamedTemporaryFile(prefix="move-", suffix=".log", delete=False)  # noqa: SIM115
    argv = [sys.executable, "manage.py", "dead_letters", "move", "--vhost", dlq_shop.vhost]
    argv += ["--queue", "shop.dead", "--reason", "rejected", "--rate", "40"]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def ten_moved() -> bool:
            output = Path(log.name).read_text(errors="replace")
            if process.poll() is not None:
                raise StopWaiting(f"exited early with {process.returncode}: {output}")
            assert "moved 10/" in output, output
            return True

        eventually(ten_moved, what="ten messages moved", timeout=60, interval=0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    # The broker gives the unacked message back once it sees the connection gone.
    eventually(
        lambda: dlq_shop.depth("orders") + dlq_shop.depth("shop.dead") >= REJECTED + EXPIRED,
        what="the move's connection gone",
    )
    moved = dlq_shop.drain("orders")
    left = [m for m in dlq_shop.drain("shop.dead") if m.startswith("order-")]
    counts = Counter(moved + left)
    assert set(counts) == set(dlq_shop.rejected_ids), "no message lost"
    assert sum(counts.values()) - len(counts) <= 1, f"at most one duplicate: {counts}"
    assert 10 <= len(moved) < REJECTED, "killed midway"
    assert MessageMove.objects.get().state == "running"  # its process died: it never finished
