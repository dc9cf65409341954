"""Celery task messages by their shape: protocol 2 (headers) and 1 (a dict body)."""

from __future__ import annotations

import json

import pytest

from flows.decoding.celery import celery_task

HEADERS = {
    "lang": "py",
    "task": "proj.tasks.add",
    "id": "0b8f",
    "shadow": None,
    "eta": "2030-01-01T00:00:00+00:00",
    "expires": None,
    "group": "g1",
    "group_index": 0,
    "retries": 2,
    "timelimit": [None, None],
    "root_id": "r00t",
    "parent_id": "p4r3nt",
    "argsrepr": "(2, 3)",
    "kwargsrepr": "{'z': 1}",
    "origin": "gen42@host",
    "ignore_result": False,
}
EMBED = {"callbacks": [{"task": "proj.tasks.log"}], "errbacks": None, "chain": None, "chord": None}


def show(value):
    return json.dumps(value)


def test_protocol_2_reads_headers_and_the_body_triple():
    task = celery_task(HEADERS, [[2, 3], {"z": 1}, EMBED], body_read=True, show=show)
    assert task is not None
    assert (task.protocol, task.task, task.id) == (2, "proj.tasks.add", "0b8f")
    assert (task.args, task.kwargs, task.args_text, task.kwargs_text) == (
        [2, 3],
        {"z": 1},
        "[2, 3]",
        '{"z": 1}',
    )
    assert (task.retries, task.eta, task.expires) == (2, "2030-01-01T00:00:00+00:00", None)
    assert (task.parent_id, task.root_id, task.group, task.origin) == (
        "p4r3nt",
        "r00t",
        "g1",
        "gen42@host",
    )
    assert task.extra["callbacks"] == [{"task": "proj.tasks.log"}]
    assert "errbacks" not in task.extra  # unset parts of the embed are left out
    assert task.extra["lang"] == "py"
    assert task.rows == (
        ("task", "proj.tasks.add"),
        ("id", "0b8f"),
        ("args", "[2, 3]"),
        ("kwargs", '{"z": 1}'),
        ("retries", "2"),
        ("eta", "2030-01-01T00:00:00+00:00"),
        ("parent id", "p4r3nt"),
        ("root id", "r00t"),
        ("group", "g1"),
        ("origin", "gen42@host"),
        ("protocol", "2"),
    )


def test_protocol_2_with_an_unreadable_body_shows_the_repr_headers():
    task = celery_task(HEADERS, None, body_read=False, show=show)
    assert task is not None
    assert (task.args, task.args_text, task.kwargs_text) == (None, "(2, 3)", "{'z': 1}")
    assert task.notes == ("args and kwargs as the argsrepr and kwargsrepr headers give them",)


def test_protocol_2_with_a_body_of_another_shape_says_so():
    task = celery_task(HEADERS, {"not": "a triple"}, body_read=True, show=show)
    assert task is not None
    assert task.notes[0] == "the body is not [args, kwargs, embed] as protocol 2 has it"


def test_protocol_1_reads_the_body():
    body = {
        "task": "proj.tasks.add",
        "id": "0b8f",
        "args": [2, 3],
        "kwargs": {},
        "retries": 0,
        "eta": None,
        "expires": None,
        "utc": True,
        "callbacks": None,
        "errbacks": None,
        "timelimit": [None, None],
        "taskset": None,
        "chord": None,
        "group": None,
    }
    task = celery_task({}, body, body_read=True, show=show)
    assert task is not None
    assert (task.protocol, task.task, task.args, task.kwargs, task.retries) == (
        1,
        "proj.tasks.add",
        [2, 3],
        {},
        0,
    )
    assert task.extra["utc"] is True


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, [[1], {}, {}]),  # a triple without the headers
        ({"task": "t"}, [[1], {}, {}]),  # no id
        ({"task": "", "id": "x"}, [[1], {}, {}]),
        ({}, {"task": "t", "id": "x"}),  # neither args nor kwargs
        ({}, {"task": 5, "id": "x", "args": []}),
        ({}, {"order": 4711}),
        ({}, "text"),
    ],
)
def test_what_is_not_a_task_is_none(headers, body):
    assert celery_task(headers, body, body_read=True, show=show) is None
