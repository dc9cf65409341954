"""Per-viewer filtering, sampling and accounting: the counts always add up (tables)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.tap.events import TapEvent, body_bytes
from flows.tap.filters import EventFilter
from flows.tap.groups import tap_group
from flows.tap.viewer import ViewerStream
from tests.support.tap_events import delivered, published


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(n: int, *, kind: str = "publish", start: int = 0) -> list[TapEvent]:
    if kind == "deliver":
        return [delivered(start + i, exchange="x", routing_key=f"k.{i}") for i in range(n)]
    return [published(start + i, exchange="x", routing_key=f"k.{i}") for i in range(n)]


def identity_holds(counts: dict) -> bool:
    return counts["received"] == (
        counts["sent"] + counts["filtered_out"] + counts["sampled_out"] + counts["dropped"]
    ) and counts["dropped"] == sum(counts["drop_reasons"].values())


@pytest.mark.parametrize(
    ("limit", "batch", "sent", "sampled_out"),
    [
        (None, 1000, 1000, 0),
        (10, 5, 5, 0),
        (10, 10, 10, 0),
        (10, 1000, 10, 990),
        (1, 3, 1, 2),
    ],
)
def test_sampling_caps_one_burst_at_one_seconds_worth(limit, batch, sent, sampled_out) -> None:
    stream = ViewerStream(EventFilter(), max_events_per_second=limit, clock=FakeClock())
    chosen = stream.process(events(batch))
    assert len(chosen) == sent
    assert stream.counts == {
        "received": batch, "sent": sent, "filtered_out": 0, "sampled_out": sampled_out,
        "dropped": 0, "drop_reasons": {},
    }  # fmt: skip


def test_sampled_events_are_spread_over_the_batch_in_order() -> None:
    stream = ViewerStream(EventFilter(), max_events_per_second=4, clock=FakeClock())
    chosen = stream.process(events(100))
    assert [event["seq"] for event in chosen] == [0, 25, 50, 75]


def test_the_budget_refills_with_time() -> None:
    clock = FakeClock()
    stream = ViewerStream(EventFilter(), max_events_per_second=10, clock=clock)
    assert len(stream.process(events(50))) == 10
    assert stream.process(events(50)) == []
    clock.now += 0.5
    assert len(stream.process(events(50))) == 5
    clock.now += 60  # a long pause saves up no more than one second's worth
    assert len(stream.process(events(50))) == 10
    assert identity_holds(stream.counts)


def test_filter_applies_before_sampling() -> None:
    """The one message asked for is never sampled away among the others."""
    stream = ViewerStream(
        EventFilter.from_params({"kind": "deliver"}), max_events_per_second=1, clock=FakeClock()
    )
    batch = events(500) + events(1, kind="deliver", start=500) + events(500, start=501)
    chosen = stream.process(batch)
    assert [event["seq"] for event in chosen] == [500]
    assert stream.counts["filtered_out"] == 1000
    assert stream.counts["sampled_out"] == 0


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        ([("process", 10), ("drop", 5, "slow viewer", False)],
         {"received": 15, "sent": 10, "dropped": 5, "drop_reasons": {"slow viewer": 5}}),
        ([("process", 10), ("drop", 4, "slow viewer", True)],
         {"received": 10, "sent": 6, "dropped": 4, "drop_reasons": {"slow viewer": 4}}),
        ([("drop", 2, "a", False), ("drop", 3, "b", False), ("drop", 1, "a", False)],
         {"received": 6, "sent": 0, "dropped": 6, "drop_reasons": {"a": 3, "b": 3}}),
    ],
)  # fmt: skip
def test_drops_are_counted_with_their_reason(calls, expected) -> None:
    stream = ViewerStream(EventFilter())
    for call in calls:
        if call[0] == "process":
            stream.process(events(call[1]))
        else:
            stream.count_dropped(call[1], call[2], already_processed=call[3])
    assert {key: stream.counts[key] for key in expected} == expected
    assert identity_holds(stream.counts)


def test_cannot_drop_more_than_was_sent() -> None:
    stream = ViewerStream(EventFilter())
    stream.process(events(2))
    with pytest.raises(ValueError):
        stream.count_dropped(3, "slow viewer", already_processed=True)


def test_a_rate_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        ViewerStream(EventFilter(), max_events_per_second=0)


@settings(deadline=None)  # timing is not the property; a loaded CI machine is slow
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["process", "drop", "drop_sent", "wait"]),
            st.integers(min_value=0, max_value=300),
        ),
        max_size=30,
    ),
    st.sampled_from([None, 1, 7, 100]),
)
def test_counts_always_add_up(steps, limit) -> None:
    clock = FakeClock()
    stream = ViewerStream(
        EventFilter.from_params({"routing_key": "k.1*"}) if limit == 7 else EventFilter(),
        max_events_per_second=limit,
        clock=clock,
    )
    for action, n in steps:
        if action == "process":
            stream.process(events(n))
        elif action == "drop":
            stream.count_dropped(n, "slow viewer")
        elif action == "drop_sent":
            stream.count_dropped(min(n, stream.counts["sent"]), "x", already_processed=True)
        else:
            clock.now += n / 100
        assert identity_holds(stream.counts)


@pytest.mark.parametrize("vhost", ["/", "a/b%2F", "<script>", "vhôst", "x" * 500, ""])
def test_tap_group_is_a_valid_channels_group_name(vhost: str) -> None:
    from channels.layers import BaseChannelLayer

    name = tap_group(vhost)
    assert BaseChannelLayer().require_valid_group_name(name)
    assert name == tap_group(vhost)


def test_tap_groups_differ_per_vhost() -> None:
    assert len({tap_group(v) for v in ["/", "a", "b", "A"]}) == 4


def batch(run: str, first: int, last: int) -> dict:
    return {"type": "tap.batch", "run": run, "first_seq": first, "last_seq": last,
            "events": events(last - first + 1, start=first)}  # fmt: skip


def status(run: str, last_seq: int) -> dict:
    return {"type": "tap.status", "status": {"run": run, "last_seq": last_seq}}


@pytest.mark.parametrize(
    ("messages", "received", "dropped"),
    [
        # Joined mid-run: what came before is not this viewer's loss.
        ([batch("r", 11, 20), batch("r", 21, 30)], 20, 0),
        ([batch("r", 1, 10), batch("r", 21, 30)], 30, 10),
        ([status("r", 10), batch("r", 11, 20)], 10, 0),
        ([status("r", 10), batch("r", 16, 20)], 10, 5),
        # The last batches went missing and no batch follows: the status reveals them.
        ([batch("r", 1, 10), status("r", 25)], 25, 15),
        ([batch("r", 1, 10), status("r", 10), status("r", 10)], 10, 0),
        # A new run (the tap restarted) starts again from its own numbers.
        ([batch("r", 1, 50), batch("s", 1, 5)], 55, 0),
        ([batch("r", 1, 50), status("s", 3), batch("s", 4, 5)], 52, 0),
    ],
)  # fmt: skip
def test_missed_batches_count_as_dropped(messages, received, dropped) -> None:
    stream = ViewerStream(EventFilter())
    for message in messages:
        if message["type"] == "tap.batch":
            stream.process_batch(message)
        else:
            stream.process_status(message)
    counts = stream.counts
    assert counts["received"] == received
    assert counts["dropped"] == dropped
    assert identity_holds(counts)


def test_what_a_viewer_is_sent_has_pretty_json_bodies() -> None:
    stream = ViewerStream(EventFilter())
    [sent] = stream.process([published(body=b'{"k":1}', pretty=False)])
    assert sent["body"] == {"preview": '{\n  "k": 1\n}', "encoding": "json", "size": 7,
                            "truncated": False, "raw": "eyJrIjoxfQ=="}  # fmt: skip


def test_a_stream_for_programs_keeps_json_bodies_as_published() -> None:
    stream = ViewerStream(EventFilter(), pretty_bodies=False)
    event = published(body=b'{"k":1}', pretty=False)
    [sent] = stream.process([event])
    assert sent is event  # shared, untouched: nothing is made per event for a program
    assert sent["body"] == {"preview": '{"k":1}', "encoding": "json", "size": 7,
                            "truncated": False, "pretty": False}  # fmt: skip
    assert body_bytes(sent["body"]) == b'{"k":1}'


def from_process(process: str, state: str = "running", gaps: list | None = None) -> dict:
    return {"type": "tap.status", "status": {"process": process, "state": state,
            "gaps": gaps or [], "run": process + "-run", "last_seq": 0}}  # fmt: skip


def test_a_restarted_tap_process_is_a_gap_until_its_tap_runs() -> None:
    clock = FakeClock()
    stream = ViewerStream(EventFilter(), clock=clock)
    assert stream.from_tap(from_process("a"))["status"]["gaps"] == []
    clock.now += 1.0  # its last word
    stream.from_tap(from_process("a"))
    clock.now += 3.0  # the tap process died; the new one starts its tap
    starting = stream.from_tap(from_process("b", state="starting"))
    assert starting["status"]["gaps"] == []
    clock.now += 0.5
    [gap] = stream.from_tap(from_process("b"))["status"]["gaps"]
    assert gap["duration_s"] == 3.5
    assert gap["message"].startswith("the tap process restarted")
    # Told again with every later status, beside the new tap's own gaps.
    tap_gap = {"at": gap["at"] + 60, "duration_s": 2.0, "message": "disconnected 2.0 s: ..."}
    later = stream.from_tap(from_process("b", gaps=[tap_gap]))["status"]["gaps"]
    assert later == [gap, tap_gap]


def test_the_old_tap_processes_gaps_stay_with_the_viewer() -> None:
    stream = ViewerStream(EventFilter(), clock=FakeClock())
    old_gap = {"at": 1.0, "duration_s": 2.0, "message": "disconnected 2.0 s: ..."}
    stream.from_tap(from_process("a", gaps=[old_gap]))
    gaps = stream.from_tap(from_process("b"))["status"]["gaps"]
    assert gaps[0] == old_gap
    assert gaps[1]["message"].startswith("the tap process restarted")


@pytest.mark.parametrize(
    "messages",
    [
        [from_process("a"), from_process("a"), batch("r", 1, 2)],
        # The first tap process this viewer hears from is no restart, whenever it comes.
        [from_process("a", state="starting"), from_process("a")],
        # Another run of the tap (restarted by the same process) and statuses naming none.
        [from_process("a"), {**batch("r2", 1, 2), "status": from_process("a")["status"]}],
        [status("r", 1), status("s", 3)],
    ],
)
def test_no_gap_without_a_restart_of_the_tap_process(messages) -> None:
    stream = ViewerStream(EventFilter(), clock=FakeClock())
    for message in messages:
        shown = stream.from_tap(message)
        assert not shown.get("status", {}).get("gaps")
