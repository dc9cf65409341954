"""Tap events decoded from their body previews, and the `decoded` field `/ws/tap/` sends."""

from __future__ import annotations

import gzip
import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.decoding import decode_message
from flows.decoding.tap_event import decode_event, decode_events, preview_bytes, worth_decoding
from flows.live.rows import kept_for_the_page
from flows.tap.events import with_decoded
from tests.support.tap_events import published, published_via_bindings

PICKLE = "application/x-python-serialize"
TASK = {"task": "proj.add", "id": "t-1", "retries": 0}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"preview": "AAEC", "encoding": "base64"}, (b"\x00\x01\x02", False)),
        ({"preview": "AAECAw", "encoding": "base64", "truncated": True}, (b"\x00\x01\x02", True)),
        ({"preview": "%%%", "encoding": "base64"}, None),
        ({"preview": "é", "encoding": "text"}, ("é".encode(), False)),
        ({"preview": '{\n  "a": 1\n}', "encoding": "json"}, (b'{\n  "a": 1\n}', False)),
        ({"encoding": "text"}, None),
    ],
)
def test_the_preview_gives_back_the_bytes(body, expected):
    assert preview_bytes(body) == expected


def test_a_pickled_task_is_decoded_from_a_firehose_event():
    event = published(
        properties={"content_type": PICKLE, "content_encoding": "binary"},
        headers=TASK,
        body=pickle.dumps(((2, 3), {}, {}), protocol=4),
    )
    assert event["body"]["encoding"] == "base64"
    decoded = decode_event(event)
    assert decoded is not None and decoded.celery is not None
    assert (decoded.celery.task, decoded.celery.args) == ("proj.add", [2, 3])


def test_a_json_task_is_decoded_from_its_pretty_or_raw_preview():
    body = json.dumps([[2, 3], {"z": 1}, {}]).encode()
    for pretty in (True, False):
        event = published_via_bindings(
            properties={"content_type": "application/json"}, headers=TASK, body=body, pretty=pretty
        )
        decoded = decode_event(event)
        assert decoded is not None and decoded.celery is not None
        assert decoded.celery.kwargs == {"z": 1}


def test_a_preview_the_page_cut_still_decodes_as_far_as_it_goes():
    event = published(
        properties={"content_type": PICKLE},
        body=pickle.dumps(list(range(20_000)), protocol=4),
    )
    kept = kept_for_the_page(event)
    assert kept["body"]["truncated"] is True
    decoded = decode_event(kept)
    assert decoded is not None and not decoded.ok
    assert "only the first part of the body was there to read" in decoded.notes


def test_the_stream_adds_decoded_only_where_a_decoder_applies():
    plain = published(body=b'{"order": 4711}', properties={"content_type": "application/json"})
    zipped = published(
        body=gzip.compress(b'{"order": 4711}'),
        properties={"content_type": "application/json", "content_encoding": "gzip"},
    )
    shown_plain, sent = with_decoded([plain, zipped])
    assert shown_plain is plain
    assert sent["decoded"]["decoder"] == "json"
    assert sent["decoded"]["value"] == {"order": 4711}
    assert sent["decoded"]["decompressed"] == "gzip: decompressed to 15 bytes"
    assert {key: value for key, value in sent.items() if key != "decoded"} == zipped
    json.dumps(sent)


def test_a_batch_decodes_within_its_budget_and_says_which_events_it_did_not_reach():
    ticks = iter(range(100))
    pickled = published(properties={"content_type": PICKLE}, body=pickle.dumps([1]))
    plain = published(body=b"{}")
    # The clock: 0 at the start, then one tick per look; the budget is 2 ticks.
    result = decode_events(
        [pickled, plain, pickled, pickled], budget_s=2, clock=lambda: next(ticks)
    )
    [(_, first), (_, untouched), (_, second), (_, late)] = result
    assert first is not None and first.ok and second is not None and second.ok
    assert untouched is None  # no decoder applies: it costs nothing, nor is it marked
    assert late is not None and late.decoder == "none"
    assert late.error == "not decoded: this batch spent its 2 s of decoding before this event"


@pytest.mark.parametrize(
    ("event", "worth"),
    [
        (published(body=b'{"order": 1}', properties={"content_type": "application/json"}), False),
        (published(body=b"text"), False),
        (published(body=b"\xff\x00binary"), False),
        (published(body=b"\xff", properties={"content_type": "application/x-msgpack"}), True),
        (published(body=b"{}", headers=TASK), True),
        (published(body=b'{"task": "t", "id": "i", "args": []}'), True),
        (published(body=pickle.dumps(1)), True),  # no content type: its first byte
        (published(body=gzip.compress(b"x")), True),
        (published(body=b"x", properties={"content_encoding": "gzip"}), True),
        (published(body=b"x", headers={"compression": "application/x-gzip"}), True),
        (published(body=b"x", properties={"content_encoding": "utf-8"}), False),
    ],
)
def test_worth_decoding_reads_only_the_event(event, worth):
    assert worth_decoding(event) is worth


@settings(max_examples=300, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=64),
        st.sampled_from([pickle.dumps(1), gzip.compress(b"{}"), b'{"task": "t", "id": "i"}']),
    ),
    content_type=st.sampled_from([None, "application/json", "text/plain", PICKLE, "x/y"]),
    content_encoding=st.sampled_from([None, "gzip", "utf-8", "binary"]),
    headers=st.sampled_from([{}, TASK, {"compression": "zlib"}, {"task": "t"}]),
)
def test_an_event_not_worth_decoding_is_one_no_decoder_applies_to(
    body, content_type, content_encoding, headers
):
    properties = {"content_type": content_type, "content_encoding": content_encoding}
    event = published(
        body=body, headers=headers, properties={k: v for k, v in properties.items() if v}
    )
    if not worth_decoding(event):
        data, truncated = preview_bytes(event["body"])
        assert decode_message(data, headers=headers, truncated=truncated, **properties) is None
