"""`FLOWS_MASK` applied to what decoders read out of binary bodies: never shown, anywhere.

The tap masks headers and JSON bodies as it makes an event; names inside msgpack, CBOR,
pickle or compressed bodies appear only once decoded, for the `decoded` field of `/ws/tap/`
and the live page's details panel. Each case's secret must be in neither.
"""

from __future__ import annotations

import gzip
import json
import pickle

import cbor2
import msgpack
import pytest
from django.template.loader import render_to_string

from flows.decoding import decode_event, decode_message
from flows.decoding.masked import WITHHELD_DISASSEMBLY, WITHHELD_REPR, mask_decoded
from flows.live.rows import build_details
from flows.masking import DEFAULT_MASK, MASKED, NO_MASK
from flows.tap.events import with_decoded
from tests.support.tap_events import published

SECRET = "s3cr3t-Value-42"
PICKLE = "application/x-python-serialize"
MSGPACK = "application/x-msgpack"
TASK = {"task": "proj.charge", "id": "t-1"}


def event_of(body: bytes, content_type: str, *, encoding: str | None = None, headers=None):
    properties = {"content_type": content_type}
    if encoding:
        properties["content_encoding"] = encoding
    return published(properties=properties, headers=headers or {}, body=body)


CASES = {
    "msgpack": event_of(msgpack.packb({"password": SECRET, "user": "ann"}), MSGPACK),
    "cbor, nested": event_of(cbor2.dumps({"auth": [{"api_key": SECRET}]}), "application/cbor"),
    "gzip JSON": event_of(
        gzip.compress(json.dumps({"user": {"Token": SECRET}}).encode()),
        "application/json",
        encoding="gzip",
    ),
    "Celery task, msgpack kwargs": event_of(
        msgpack.packb([[1], {"token": SECRET}, {}]), MSGPACK, headers=TASK
    ),
    "Celery task, pickle kwargs": event_of(
        pickle.dumps(((1,), {"token": SECRET}, {}), protocol=4), PICKLE, headers=TASK
    ),
    "pickle dict": event_of(pickle.dumps({"secret": SECRET}, protocol=2), PICKLE),
    "Celery protocol 1, JSON, gzip": event_of(
        gzip.compress(json.dumps({**TASK, "args": [], "kwargs": {"token": SECRET}}).encode()),
        "application/json",
        encoding="gzip",
    ),
}


def details_html(event) -> str:
    return render_to_string(
        "flows/live/_details.html",
        {"d": build_details(event), "error": "", "event_json": "", "republish_refusal": None},
    )


@pytest.mark.parametrize("event", CASES.values(), ids=CASES.keys())
def test_a_masked_value_in_a_decoded_body_is_in_neither_the_stream_nor_the_details(event):
    assert SECRET not in json.dumps(event)  # the raw body: binary, its names unread
    (sent,) = with_decoded([event])
    assert sent["decoded"]["ok"], sent["decoded"]
    stream = json.dumps(sent, ensure_ascii=False)
    assert SECRET not in stream
    assert MASKED in stream
    html = details_html(event)
    assert SECRET not in html
    assert MASKED in html


@pytest.mark.parametrize("event", CASES.values(), ids=CASES.keys())
def test_without_a_mask_the_same_bodies_show_their_values(event):
    """The cases above do hide something: unmasked, each decoded body shows its secret."""
    decoded = decode_event(event, NO_MASK)
    assert decoded is not None and SECRET in json.dumps(decoded.as_json()) + decoded.text


@pytest.mark.parametrize(
    ("event", "disassembly_shown"),
    [
        (CASES["pickle dict"], False),
        (CASES["Celery task, pickle kwargs"], False),
        (event_of(pickle.dumps({"colour": "blue"}, protocol=2), PICKLE), True),
    ],
)
def test_a_pickle_disassembly_is_withheld_when_it_holds_a_masked_value(event, disassembly_shown):
    decoded = decode_event(event, DEFAULT_MASK)
    assert decoded is not None
    assert (decoded.disassembly != WITHHELD_DISASSEMBLY) is disassembly_shown


def test_a_truncated_pickle_holding_a_masked_name_has_its_disassembly_withheld():
    data = pickle.dumps({"password": SECRET, "pad": "x" * 50}, protocol=2)[:-8]
    decoded = decode_event(event_of(data, PICKLE), DEFAULT_MASK)
    assert decoded is not None and not decoded.ok
    assert decoded.disassembly == WITHHELD_DISASSEMBLY


def test_celery_reprs_that_may_hold_a_masked_value_are_withheld():
    """The tap withholds such headers already (`tests/test_masking.py`); a decoder given
    them unmasked withholds what it reads from them too."""
    headers = {**TASK, "argsrepr": "(1,)", "kwargsrepr": f"{{'token': '{SECRET}'}}"}
    unreadable = decode_message(b"\xc1", content_type=MSGPACK, headers=headers)
    assert unreadable is not None
    decoded = mask_decoded(unreadable, DEFAULT_MASK)
    assert decoded.celery is not None
    assert (decoded.celery.args_text, decoded.celery.kwargs_text) == ("(1,)", WITHHELD_REPR)
    event = event_of(b"\xc1", MSGPACK, headers=headers)
    assert SECRET not in json.dumps(with_decoded([event]))


def test_a_decoded_body_with_nothing_masked_is_returned_as_it_is():
    decoded = decode_event(event_of(msgpack.packb({"colour": "blue"}), MSGPACK), NO_MASK)
    assert decoded is not None
    assert mask_decoded(decoded, DEFAULT_MASK) is decoded


@pytest.mark.parametrize("event", CASES.values(), ids=CASES.keys())
def test_the_live_pages_row_carries_no_bytes_of_a_body_whose_decoded_form_masks(event):
    """The row keeps its event for the details panel: the bytes would be the secret again."""
    from flows.live.rows import build_row

    row_event = json.loads(build_row(event).event_json)
    assert row_event["body"]["masked"] is True
    assert event["body"]["preview"] not in build_row(event).event_json
    assert "raw" not in row_event["body"]
