"""Which decoder reads which body, and that none ever raises."""

from __future__ import annotations

import gzip
import json
import pickle
import zlib

import cbor2
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.decoding import binary_formats, decode_message
from flows.decoding.message import LABELS

TASK_HEADERS = {"task": "proj.add", "id": "t-1", "retries": 0, "argsrepr": "(2, 3)"}
TRIPLE = [[2, 3], {"z": 1}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
PROTOCOL_1 = {"task": "proj.add", "id": "t-1", "args": [2, 3], "kwargs": {}, "retries": 0}
PICKLE = "application/x-python-serialize"


def case(body, content_type=None, content_encoding=None, headers=None):
    return {
        "body": body,
        "content_type": content_type,
        "content_encoding": content_encoding,
        "headers": headers,
    }


@pytest.mark.parametrize(
    ("message", "decoder", "label"),
    [
        (case(json.dumps(TRIPLE).encode(), "application/json", "utf-8", TASK_HEADERS),
         "json", "Celery task (protocol 2, JSON)"),
        (case(json.dumps(PROTOCOL_1).encode(), "application/json; charset=utf-8"),
         "json", "Celery task (protocol 1, JSON)"),
        (case(json.dumps(PROTOCOL_1).encode()), "json", "Celery task (protocol 1, JSON)"),
        (case(pickle.dumps(tuple(TRIPLE)), PICKLE, "binary", TASK_HEADERS),
         "pickle", "Celery task (protocol 2, pickle)"),
        (case(pickle.dumps(PROTOCOL_1, protocol=0), PICKLE), "pickle",
         "Celery task (protocol 1, pickle)"),
        (case(pickle.dumps({"a": 1})), "pickle", "pickle"),  # no content type: its bytes say
        (case(pickle.dumps({"a": 1}), "application/octet-stream"), "pickle", "pickle"),
        (case(msgpack.packb(TRIPLE), "application/x-msgpack", "binary", TASK_HEADERS),
         "msgpack", "Celery task (protocol 2, msgpack)"),
        (case(msgpack.packb({1: b"\xff"}), "application/msgpack"), "msgpack", "msgpack"),
        (case(cbor2.dumps(PROTOCOL_1), "application/cbor"), "cbor",
         "Celery task (protocol 1, CBOR)"),
        (case(b"\x08\x96\x01", "application/x-protobuf"), "protobuf", "protobuf wire format"),
        (case(b"\x08\x96\x01", "application/protobuf"), "protobuf", "protobuf wire format"),
        (case(b"\x08\x96\x01", "application/vnd.google.protobuf"), "protobuf",
         "protobuf wire format"),
        (case(gzip.compress(b'{"a": 1}'), "application/json", "gzip"), "json", "JSON"),
        (case(gzip.compress(b"hello")), "text", "text"),  # gzip's magic, no content type
        (case(zlib.compress(b"hello"), "text/plain", "deflate"), "text", "text"),
        (case(zlib.compress(json.dumps(TRIPLE).encode()), "application/json", "utf-8",
              {**TASK_HEADERS, "compression": "application/x-gzip"}),
         "json", "Celery task (protocol 2, JSON)"),
        (case(gzip.compress(pickle.dumps(1)), PICKLE, "gzip"), "pickle", "pickle"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)  # fmt: skip
def test_the_decoder_follows_content_type_encoding_and_shape(message, decoder, label):
    decoded = decode_message(**message)
    assert decoded is not None
    assert (decoded.decoder, decoded.label, decoded.error) == (decoder, label, "")
    json.dumps(decoded.as_json())


@pytest.mark.parametrize(
    "message",
    [
        case(b'{"order": 4711}', "application/json"),
        case(b'{"order": 4711}'),
        case(b"[1, 2]"),
        case(b"plain text", "text/plain"),
        case(b"plain text"),
        case(b"\x00\x01binary", "application/octet-stream"),
        case(b'{"a": 1}', "application/json", "utf-8"),  # Celery's content encoding: no gzip
        case(b"<a/>", "application/xml"),
        case(b""),
    ],
    ids=repr,
)
def test_nothing_is_added_where_the_raw_body_says_it_all(message):
    assert decode_message(**message) is None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (case(b"not gzip", "application/json", "gzip"),
         "could not decode as gzip: Error -3 while decompressing data: incorrect header check"),
        (case(b"\x0b", "application/json", "br"), "could not decode as br: br is not supported"),
        (case(b"\xc1", "application/x-msgpack"), "could not decode as msgpack: "),
        (case(b"\x92\x01", "application/x-msgpack"), "could not decode as msgpack: "),
        (case(b"\x9b\x00\x00\x00\x10\x00\x00\x00\x00", "application/cbor"),
         "could not decode as CBOR: premature end of stream"),
        (case(b"\x0e", "application/x-protobuf"),
         "could not decode as protobuf wire format: wire type 6 (field 1) at byte 0"),
        (case(b"\x80\x04K", PICKLE), "could not decode as pickle: not enough data"),
        (case(b"[[2, 3], {}", "application/json", None, TASK_HEADERS),
         "could not decode as JSON: "),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)  # fmt: skip
def test_a_failure_says_what_could_not_be_decoded_and_why(message, error):
    decoded = decode_message(**message)
    assert decoded is not None and not decoded.ok
    assert decoded.error.startswith(error)
    assert decoded.as_json()["error"] == decoded.error


def test_a_task_whose_body_cannot_be_read_is_still_named_from_its_headers():
    decoded = decode_message(b"\x80\x04K", content_type=PICKLE, headers=TASK_HEADERS)
    assert decoded is not None and decoded.celery is not None
    assert (decoded.celery.task, decoded.celery.args_text) == ("proj.add", "(2, 3)")
    assert decoded.disassembly.startswith("    0: \\x80 PROTO      4")


def test_a_cut_body_is_read_as_far_as_it_goes_and_says_so():
    data = pickle.dumps(list(range(100)), protocol=4)
    decoded = decode_message(data[:50], content_type=PICKLE, truncated=True)
    assert decoded is not None and not decoded.ok
    assert "only the first part of the body was there to read" in decoded.notes
    assert "the error may only mean the body was cut" in decoded.notes
    assert "BININT1" in decoded.disassembly


def test_a_decompression_bomb_is_cut_and_says_so():
    bomb = gzip.compress(b"7" * 20_000_000)
    decoded = decode_message(bomb, content_type="text/plain", content_encoding="gzip")
    assert decoded is not None and decoded.decoder == "text"
    assert decoded.decompressed == "gzip: first 1048576 bytes of a larger body decompressed"
    assert len(decoded.text) <= 4 * 32 * 1024 + 1


def test_pickle_results_carry_the_disassembly_and_the_literal_reading():
    decoded = decode_message(
        pickle.dumps(tuple(TRIPLE), protocol=4), content_type=PICKLE, headers=TASK_HEADERS
    )
    assert decoded is not None and decoded.celery is not None
    assert decoded.celery.args_text == "[2, 3]" and decoded.celery.kwargs_text == "{'z': 1}"
    assert decoded.text == (
        "([2, 3], {'z': 1}, {'callbacks': None, 'errbacks': None, 'chain': None, 'chord': None})"
    )
    assert decoded.as_json()["disassembly"] == decoded.disassembly
    assert decoded.as_json()["celery"]["args"] == [2, 3]


def test_yaml_without_pyyaml_is_shown_as_text(monkeypatch):
    monkeypatch.setattr(binary_formats, "yaml_module", lambda: None)
    decoded = decode_message(b"a: 1\n", content_type="application/x-yaml")
    assert decoded is not None
    assert (decoded.decoder, decoded.text) == ("text", "a: 1\n")
    assert decoded.notes == ("PyYAML is not installed here, so YAML is shown as text",)


def test_yaml_with_pyyaml_is_read_safely():
    decoded = decode_message(b"a: [1, 2]\n", content_type="application/x-yaml")
    assert decoded is not None and decoded.value == {"a": [1, 2]}
    refused = decode_message(b"!!python/object/apply:os.system ['echo']", content_type="text/yaml")
    assert refused is not None and refused.error.startswith("could not decode as YAML: ")


DECODED_TYPES = [
    None,
    "application/json",
    PICKLE,
    "application/x-msgpack",
    "application/cbor",
    "application/x-protobuf",
    "application/x-yaml",
    "text/plain",
]


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from(DECODED_TYPES),
    content_encoding=st.sampled_from([None, "gzip", "deflate", "xz", "utf-8"]),
    task=st.booleans(),
)
def test_no_body_makes_a_decoder_raise(body, content_type, content_encoding, task):
    decoded = decode_message(
        body,
        content_type=content_type,
        content_encoding=content_encoding,
        headers=TASK_HEADERS if task else None,
    )
    if decoded is not None:
        json.dumps(decoded.as_json())
        assert decoded.label in decoded.error or decoded.ok


def test_every_decoder_has_a_label():
    assert set(LABELS) == {"json", "text", "pickle", "msgpack", "cbor", "yaml", "protobuf"}
