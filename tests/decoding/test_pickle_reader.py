"""Pickles read without unpickling: literals come out as values, everything else as markers."""

from __future__ import annotations

import collections
import datetime as dt
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.decoding import decode_message
from flows.decoding.bounds import Budget, LimitReached
from flows.decoding.pickle_reader import (
    Malformed,
    disassemble,
    looks_like_pickle,
    read_literal,
)
from flows.decoding.values import literal_text

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)
PICKLE = "application/x-python-serialize"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        255,
        65_536,
        -(2**31),
        2**70,
        -(2**70),
        1.5,
        float("-inf"),
        "",
        "é ☃ text",
        [],
        [1, [2, [3]]],
        (),
        (1,),
        (1, 2),
        (1, 2, 3),
        (1, 2, 3, 4),
        {},
        {"a": 1, 2: "b", (3, 4): None},
        ((2, 3), {"z": 1}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}),
    ],
    ids=repr,
)
def test_literals_read_back_as_the_values_pickled(value, protocol):
    assert read_literal(pickle.dumps(value, protocol=protocol)).value == value


@pytest.mark.parametrize(
    ("value", "protocol"),
    [(b"\x00\xffbytes", 3), (b"", 4), ({1, 2}, 4), (frozenset({"a"}), 4), (bytearray(b"ab"), 5)],
    ids=repr,
)
def test_bytes_and_sets_read_back_from_the_protocols_that_have_opcodes_for_them(value, protocol):
    assert read_literal(pickle.dumps(value, protocol=protocol)).value == value


def test_shared_and_self_referencing_values_are_read_through_the_memo():
    shared = [1]
    loop: list = []
    loop.append(loop)
    value = read_literal(pickle.dumps({"a": shared, "b": shared, "loop": loop}, protocol=4)).value
    assert value["a"] is value["b"]
    assert value["loop"][0] is value["loop"]
    assert literal_text(value, max_depth=3) == "{'a': [1], 'b': [1], 'loop': [[…]]}"


class Command:
    """What an attacker pickles: unpickling it calls os.system."""

    def __reduce__(self):
        return (os.system, ("echo owned",))


@pytest.mark.parametrize(
    ("value", "protocol", "shown"),
    [
        (Command(), 4, f"<global {os.system.__module__}.system>('echo owned')"),
        (Command(), 0, f"<global {os.system.__module__}.system>('echo owned')"),
        (dt.date(2024, 5, 6), 4, "<global datetime.date>(b'\\x07\\xe8\\x05\\x06')"),
        (collections.OrderedDict(a=1), 4, "<global collections.OrderedDict>() + {'a': 1}"),
        (
            collections.defaultdict(list, k=[1]),
            2,
            "<global collections.defaultdict>(<global __builtin__.list>) + {'k': [1]}",
        ),
        (len, 4, "<global builtins.len>"),
    ],
    ids=["os.system", "os.system protocol 0", "date", "OrderedDict", "defaultdict", "len"],
)
def test_globals_calls_and_objects_are_shown_by_name_and_never_built(value, protocol, shown):
    reading = read_literal(pickle.dumps(value, protocol=protocol))
    assert literal_text(reading.value) == shown
    assert reading.markers[0] == shown.split(">", 1)[0] + ">"


class Plain:
    def __init__(self) -> None:
        self.x = 1


def test_an_object_with_state_is_a_marker_carrying_the_state():
    text = literal_text(read_literal(pickle.dumps(Plain(), protocol=4)).value)
    assert text == (
        "<global tests.decoding.test_pickle_reader.Plain>.__new__().__setstate__({'x': 1})"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "pickle exhausted before seeing STOP"),
        (b"\x80\x04K", "not enough data in stream to read uint1"),
        (b"\x80\x04.", "STOP at byte 2: the stack is empty"),
        (b"\x80\x04e.", "APPENDS at byte 2: no mark to pop to"),
        (b"\x80\x04h\x07.", "BINGET at byte 2: memo 7 was never stored"),
        (b"\x80\x04\xff.", "at position 2, opcode b'\\xff' unknown"),
        (pickle.dumps([1, 2], protocol=4)[:-3], "not enough data"),
    ],
    ids=["empty", "cut in an argument", "empty stack", "no mark", "memo", "bad opcode", "cut"],
)
def test_malformed_pickles_say_where_reading_stopped(data, message):
    with pytest.raises(Malformed, match=re.escape(message)):
        read_literal(data)


def test_reading_stops_at_its_time_budget():
    with pytest.raises(LimitReached, match="took longer than 0 s"):
        read_literal(pickle.dumps(list(range(5000)), protocol=4), budget=Budget(seconds=0))


def test_the_disassembly_is_pickletools_and_is_cut_at_its_bound():
    data = pickle.dumps({"task": "add", "args": list(range(200))}, protocol=4)
    text, stopped = disassemble(data)
    assert text.startswith("    0: \\x80 PROTO      4\n")
    assert "SHORT_BINUNICODE 'task'" in text
    assert stopped == ""
    short, stopped = disassemble(data, max_chars=100)
    assert len(short) == 100 and stopped == "disassembly cut at 100 characters"


def test_a_broken_pickle_is_disassembled_up_to_where_it_breaks():
    text, stopped = disassemble(pickle.dumps([1, 2], protocol=4)[:-3])
    assert "EMPTY_LIST" in text
    assert stopped.startswith("stopped: ")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (pickle.dumps(1, protocol=2), True),
        (pickle.dumps(1, protocol=5), True),
        (pickle.dumps(1, protocol=0), False),  # text: nothing marks it as a pickle
        (b"\x80\x09.", False),
        (b"\x80\x04K\x01", False),
        (b"{}", False),
    ],
)
def test_pickles_are_recognised_by_their_first_and_last_byte(data, expected):
    assert looks_like_pickle(data) is expected


# --- the proof: a malicious pickle runs nothing ------------------------------------------------


def _unpickle_in_a_child(data: bytes, *, path: Path) -> None:
    """What `pickle.loads` of `data` does, in a process of its own (the control)."""
    subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=data,
        env={**os.environ, "PYTHONPATH": str(path)},
        check=False,
        timeout=60,
    )


def test_a_malicious_pickle_is_shown_and_runs_nothing(tmp_path: Path):
    marker = tmp_path / "it-ran"
    payload = f"open({str(marker)!r}, 'w').write('ran')"
    evil = pickle.dumps(Exec(payload), protocol=4)
    assert b"exec" in evil

    decoded = decode_message(evil, content_type=PICKLE)
    assert decoded is not None and decoded.ok
    assert not marker.exists()
    assert decoded.text == f"<global builtins.exec>({payload!r})"
    assert "STACK_GLOBAL" in decoded.disassembly and "REDUCE" in decoded.disassembly
    assert any("<global builtins.exec>" in note for note in decoded.notes)

    # The control: unpickled, the same bytes do write the file.
    _unpickle_in_a_child(evil, path=tmp_path)
    assert marker.read_text() == "ran"


def test_a_module_a_pickle_names_is_never_imported(tmp_path: Path):
    marker = tmp_path / "imported"
    module = "flows_decoding_trap"
    (tmp_path / f"{module}.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\ndef anything():\n    return 1\n"
    )
    # GLOBAL 'flows_decoding_trap anything', MARK, TUPLE, REDUCE, STOP: `anything()`.
    evil = f"c{module}\nanything\n(tR.".encode()
    sys.path.insert(0, str(tmp_path))
    try:
        decoded = decode_message(evil, content_type=PICKLE)
    finally:
        sys.path.remove(str(tmp_path))
    assert decoded is not None and decoded.text == f"<global {module}.anything>()"
    assert not marker.exists() and module not in sys.modules

    _unpickle_in_a_child(evil, path=tmp_path)
    assert marker.read_text() == "imported"


class Exec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))
