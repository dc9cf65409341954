"""The dead-letters page: groups from the real broker, moves started, followed and cancelled
from the page, and who may move."""

from __future__ import annotations

import re

import pytest

from tests.support.accounts import make_user
from tests.support.dead_letters import EXPIRED, REJECTED, Shop
from tests.support.waiting import eventually


@pytest.fixture
def mover(client, django_user_model, fresh_runtime):
    """An admin: may read and move dead-lettered messages (`flows.move_messages`)."""
    client.force_login(make_user("mover", role="admin"))
    return client


def page(client, dlq_shop: Shop, *, read: bool = True) -> str:
    query = {"vhost": dlq_shop.vhost, "queue": "shop.dead"} | ({"read": "1"} if read else {})
    response = client.get("/dead-letters/", query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_queue_is_read_only_when_asked(mover, dlq_shop: Shop):
    html = page(mover, dlq_shop, read=False)
    assert 'data-testid="dlq-not-read"' in html and 'data-testid="dlq-group"' not in html
    assert 'data-testid="dlq-read-cost"' in html and "redelivered" in html
    # Asking reads it (and gives every message back).
    assert 'data-testid="dlq-group"' in page(mover, dlq_shop)
    assert dlq_shop.depth("shop.dead") == REJECTED + EXPIRED


def test_the_page_groups_the_queue_by_reason_and_origin(mover, dlq_shop: Shop):
    html = page(mover, dlq_shop)
    rows = re.findall(
        r'data-testid="dlq-group">\s*<td class="num">(\d+)</td>\s*<td>(\w+)</td>', html
    )
    assert rows == [(str(REJECTED), "rejected"), (str(EXPIRED), "expired")]
    assert "loses no message" in html and "at most one" in html
    assert dlq_shop.depth("shop.dead") == REJECTED + EXPIRED


def test_a_viewer_may_neither_read_nor_move(signed_in, dlq_shop: Shop, fresh_runtime):
    html = page(signed_in, dlq_shop)  # asks to read: refused, the queue untouched
    assert 'data-testid="dlq-refusal"' in html and "flows.move_messages" in html
    assert 'data-testid="dlq-group"' not in html and 'data-testid="move-back"' not in html
    response = signed_in.post("/dead-letters/move", {"vhost": dlq_shop.vhost, "queue": "shop.dead"})
    assert response.status_code == 403
    assert "flows.move_messages" in response.content.decode()
    assert dlq_shop.depth("shop.dead") == REJECTED + EXPIRED


def test_an_unknown_queue_is_a_plain_404(mover, scratch_vhost):
    response = mover.get("/dead-letters/", {"vhost": scratch_vhost, "queue": "<nope>", "read": "1"})
    assert response.status_code == 404
    assert "There is no queue &#x27;&lt;nope&gt;&#x27;" in response.content.decode()


@pytest.mark.django_db(transaction=True)  # the move's thread records it on its own connection
def test_a_move_back_runs_in_the_background_with_progress(mover, dlq_shop: Shop):
    from flows.models import MessageMove

    response = mover.post(
        "/dead-letters/move",
        {
            "vhost": dlq_shop.vhost,
            "queue": "shop.dead",
            "reason": "rejected",
            "from_queue": "orders",
        },
    )
    html = response.content.decode()
    # The move may be done before the answer is rendered: then there is nothing to poll.
    job_url = re.search(r'hx-get="(/dead-letters/moves/\w+)"', html)
    assert job_url or 'data-state="done"' in html, html

    def finished() -> str:
        progress = mover.get(job_url.group(1)).content.decode() if job_url else html
        assert 'data-state="done"' in progress, progress
        return progress

    progress = eventually(finished, what="the move done")
    assert f'<span data-testid="move-moved">{REJECTED}</span> moved' in progress
    assert sorted(dlq_shop.drain("orders")) == sorted(dlq_shop.rejected_ids)
    eventually(
        lambda: MessageMove.objects.filter(state="done", moved=REJECTED, skipped=EXPIRED).exists(),
        what="the move recorded as done",
    )


def test_a_move_to_an_exchange_outside_the_allow_list_is_refused(mover, dlq_shop: Shop, settings):
    settings.FLOWS_PUBLISH_EXCHANGES = ["demo.*"]
    response = mover.post(
        "/dead-letters/move",
        {"vhost": dlq_shop.vhost, "queue": "shop.dead", "to": "exchange", "exchange": "shop"},
    )
    assert 'data-testid="move-error"' in response.content.decode()
    assert dlq_shop.depth("shop.dead") == REJECTED + EXPIRED


def test_the_topology_panel_of_a_queue_links_to_its_dead_letters(signed_in, dlq_shop: Shop):
    response = signed_in.get(
        "/topology/details", {"vhost": dlq_shop.vhost, "kind": "queue", "name": "shop.dead"}
    )
    html = response.content.decode()
    assert 'data-testid="dead-letters-link"' in html, html
    assert "queue=shop.dead" in html


@pytest.mark.django_db(transaction=True)  # the move's thread records it on its own connection
def test_a_move_is_audited_with_who_moved_what_from_where(mover, dlq_shop: Shop):
    from flows import audit
    from flows.models import AuditEntry

    mover.post(
        "/dead-letters/move",
        {
            "vhost": dlq_shop.vhost,
            "queue": "shop.dead",
            "reason": "rejected",
            "from_queue": "orders",
        },
    )
    (entry,) = eventually(
        lambda: list(AuditEntry.objects.filter(action=audit.MOVE_MESSAGES)) or None,
        what="the move's audit entry",
    )
    assert (entry.vhost, entry.target, entry.ok) == (dlq_shop.vhost, "shop.dead", True)
    assert entry.username == "mover"
    assert entry.details["selection"] and entry.details["to"]
