"""Recordings' bounds and the size they count (flows.recording.store)."""

from __future__ import annotations

import pytest

from flows.models import Recording
from flows.recording import store
from tests.support.accounts import make_user
from tests.support.tap_events import delivered, published


@pytest.mark.parametrize(
    ("hours", "max_mb", "bounds"),
    [
        (None, None, (24.0, 1024**3)),
        ("", "", (24.0, 1024**3)),
        ("0.5", "2", (0.5, 2 * 1024**2)),
        ("168", "0.001", (168.0, 1048)),
    ],
)
def test_bounds(hours, max_mb, bounds):
    assert store.parse_bounds(hours, max_mb) == bounds


@pytest.mark.parametrize(
    ("hours", "max_mb", "field"),
    [("x", None, "hours"), ("0", None, "hours"), ("169", None, "hours"), (None, "-1", "max_mb")],
)
def test_bounds_not_valid_blame_their_field(hours, max_mb, field):
    with pytest.raises(store.BoundsError) as refused:
        store.parse_bounds(hours, max_mb)
    assert refused.value.field == field


def test_a_batch_is_stored_up_to_the_bound_then_the_recording_is_full(db):
    events = [published(seq) for seq in range(1, 6)]
    size = store.event_size(events[0])
    recording = store.start(vhost="v", user=make_user("ada", role="admin"), max_bytes=size * 3)
    outcome = store.append(recording.pk, events)
    recording.refresh_from_db()
    assert (outcome.stored, outcome.state) == (3, Recording.FULL)
    assert (recording.events_stored, recording.bytes_stored) == (3, size * 3)
    assert store.append(recording.pk, events[:1]).stored == 0  # over: nothing more
    lines = list(store.export_lines(recording))
    assert [store.export_line(event) + "\n" for event in events[:3]] == lines


def test_two_recordings_of_the_same_events_give_each_event_once(db):
    admin = make_user("ada", role="admin")
    properties = {"message_id": "m"}
    events = [published(1, properties=properties), delivered(2, properties=properties)]
    for _ in range(2):
        store.append(store.start(vhost="v", user=admin).pk, events)
    assert store.events_of_message("v", message_id="m") == events
    assert store.events_of_message("other", message_id="m") == []
