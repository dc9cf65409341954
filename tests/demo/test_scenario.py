"""Scenario files: the five shipped ones read, and every kind of mistake is named with its place."""

from __future__ import annotations

import pickletools
from pathlib import Path

import pytest

from flows.demo.messages import MessageContext, fill, render
from flows.demo.scenario import (
    ScenarioInvalid,
    UnknownScenario,
    available_scenarios,
    load_scenario,
    parse_scenario,
    placeholder_problem,
)

MINIMAL = """
title = "t"
summary = "s"
watch_for = "w"

[[exchanges]]
name = "x"
type = "topic"

[[queues]]
name = "q"

[[bindings]]
source = "x"
destination = "q"
routing_key = "a.*"

[[publishers]]
name = "p"
exchange = "x"
  [[publishers.messages]]
  routing_key = "a.b"
  body = { n = "{seq}" }
  expect = ["q"]

[[workers]]
name = "w"
queue = "q"
"""


def test_the_talks_five_scenarios_are_there_and_valid() -> None:
    assert available_scenarios() == ["belery", "events", "failures", "mailer", "topics"]
    for name in available_scenarios():
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.title and scenario.summary and scenario.watch_for
        assert scenario.default_vhost() == f"demo-{name}"
        assert scenario.publishers and scenario.workers


def test_the_topics_scenario_is_the_talks() -> None:
    topics = load_scenario("topics")
    assert {(b.destination, b.routing_key) for b in topics.bindings} == {
        ("all-food", "food.*"),
        ("all-icecream", "*.icecream"),
        ("deserts-icecream-only", "deserts.icecream"),
    }
    routes = {m.routing_key: m.expect for p in topics.publishers for m in p.messages}
    assert routes == {
        "food.pizza": ("all-food",),
        "food.icecream": ("all-food", "all-icecream"),
        "deserts.icecream": ("all-icecream", "deserts-icecream-only"),
        "drinks.coffee": (),
    }
    assert any("deserts.icecream" in note and "talk" in note for note in topics.notes)


def test_belery_publishes_persistent_tasks_and_requeues_failures() -> None:
    belery = load_scenario("belery")
    app = belery.publisher("belery app")
    assert (app.exchange, app.messages[0].routing_key) == ("Belery", "tasks")
    assert app.messages[0].properties["delivery_mode"] == 2
    worker = belery.worker("belery worker")
    assert worker.count > 1 and worker.prefetch == 1
    assert 0 < worker.failure_rate < 1 and worker.requeue is True
    pickled = belery.publisher("belery app (pickle)")
    assert pickled.enabled is False and pickled.messages[0].serializer == "pickle"


def test_a_scenario_with_one_setting_changed() -> None:
    belery = load_scenario("belery")
    changed = belery.with_worker("belery worker", count=5).with_publisher("belery app", limit=9)
    assert changed.worker("belery worker").count == 5
    assert changed.publisher("belery app").limit == 9
    assert belery.worker("belery worker").count == 3
    with pytest.raises(KeyError):
        belery.with_worker("nobody", count=1)


def test_an_unknown_scenario_lists_the_known_ones() -> None:
    with pytest.raises(UnknownScenario, match="available: belery, events"):
        load_scenario("nope")


def test_a_sixth_scenario_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "sixth.toml").write_text(MINIMAL)
    (tmp_path / "Not A Name.toml").write_text(MINIMAL)
    assert available_scenarios(tmp_path) == ["sixth"]
    assert load_scenario("sixth", tmp_path).queues[0].name == "q"


def test_the_minimal_file_is_valid_and_takes_the_defaults() -> None:
    scenario = parse_scenario(MINIMAL, name="mini")
    [exchange] = scenario.exchanges
    assert (exchange.durable, exchange.auto_delete, exchange.internal) == (True, False, False)
    [publisher] = scenario.publishers
    assert (publisher.rate, publisher.limit, publisher.mandatory) == (1.0, None, True)
    [worker] = scenario.workers
    assert (worker.count, worker.prefetch, worker.failure_rate, worker.requeue) == (1, 1, 0.0, True)
    assert publisher.messages[0].serializer == "json"


def _replace(old: str, new: str) -> str:
    assert old in MINIMAL
    return MINIMAL.replace(old, new, 1)


BAD_FILES = [
    ("not toml", "title = ", "not valid TOML"),
    ("misspelt top-level key", MINIMAL + 'wach_for = "x"\n', "wach_for: unknown key"),
    ("missing title", _replace('title = "t"\n', ""), "title: is required"),
    ("name differs from the file", 'name = "other"\n' + MINIMAL, "but the file is named"),
    (
        "exchange type",
        _replace('type = "topic"', 'type = "tpoic"'),
        "exchanges[0].type: must be one of",
    ),
    (
        "exchange without a name",
        _replace('name = "x"\ntype', "type"),
        "exchanges[0].name: is required",
    ),
    (
        "exchange key misspelt",
        _replace('type = "topic"', 'type = "topic"\ndurabel = true'),
        "exchanges[0].durabel: unknown key",
    ),
    (
        "durable not a flag",
        _replace('type = "topic"', 'type = "topic"\ndurable = "yes"'),
        "exchanges[0].durable: must be true or false",
    ),
    (
        "reserved exchange name",
        _replace('name = "x"\ntype', 'name = "amq.x"\ntype'),
        "names starting 'amq.' are reserved",
    ),
    (
        "dashboard's own prefix",
        _replace('name = "q"', 'name = "flows-dashboard.q"'),
        "names starting 'flows-dashboard.' are reserved",
    ),
    ("duplicate queue", MINIMAL + '[[queues]]\nname = "q"\n', "queues: 'q' appears twice"),
    (
        "unknown queue argument",
        _replace('name = "q"', 'name = "q"\narguments = { "x-dead-letter-exhange" = "x" }'),
        "queues[0].arguments.x-dead-letter-exhange: unknown argument",
    ),
    (
        "negative max length",
        _replace('name = "q"', 'name = "q"\narguments = { "x-max-length" = -1 }'),
        "x-max-length: must be a whole number >= 0",
    ),
    (
        "overflow mode",
        _replace('name = "q"', 'name = "q"\narguments = { "x-overflow" = "drop-tail" }'),
        "x-overflow: must be one of",
    ),
    (
        "dead-letter exchange not declared",
        _replace('name = "q"', 'name = "q"\narguments = { "x-dead-letter-exchange" = "dlx" }'),
        "names exchange 'dlx', which the scenario does not declare",
    ),
    (
        "alternate exchange not declared",
        _replace('type = "topic"', 'type = "topic"\narguments = { "alternate-exchange" = "ae" }'),
        "alternate-exchange: names exchange 'ae'",
    ),
    (
        "binding from nowhere",
        _replace('source = "x"', 'source = "y"'),
        "bindings[0].source: no exchange 'y' is declared",
    ),
    (
        "binding the default exchange",
        _replace('source = "x"', 'source = ""'),
        "the default exchange cannot be bound",
    ),
    (
        "binding to no queue",
        _replace('destination = "q"', 'destination = "r"'),
        "bindings[0].destination: no queue 'r' is declared",
    ),
    (
        "publisher to nowhere",
        _replace('exchange = "x"', 'exchange = "y"'),
        "publishers[0].exchange: no exchange 'y'",
    ),
    (
        "negative rate",
        _replace('exchange = "x"', 'exchange = "x"\nrate = -1'),
        "publishers[0].rate: must be a number from 0 to 1000",
    ),
    (
        "rate not a number",
        _replace('exchange = "x"', 'exchange = "x"\nrate = "fast"'),
        "publishers[0].rate: must be a number",
    ),
    (
        "zero limit",
        _replace('exchange = "x"', 'exchange = "x"\nlimit = 0'),
        "publishers[0].limit: must be a whole number > 0",
    ),
    (
        "publisher without messages",
        MINIMAL[: MINIMAL.index("  [[publishers.messages]]")]
        + MINIMAL[MINIMAL.index("[[workers]]") :],
        "needs at least one [[publishers.messages]]",
    ),
    (
        "message without a routing key",
        _replace('  routing_key = "a.b"\n', ""),
        "messages[0].routing_key: is required (here or on the publisher)",
    ),
    (
        "expected queue not declared",
        _replace('expect = ["q"]', 'expect = ["r"]'),
        "expect: names queue 'r'",
    ),
    ("unknown placeholder", _replace('"{seq}"', '"{sequence}"'), "unknown placeholder {sequence}"),
    ("stray brace", _replace('"{seq}"', '"{seq"'), "has a stray brace"),
    (
        "unknown property",
        _replace('expect = ["q"]', 'expect = ["q"]\n  properties = { delivery = 2 }'),
        "properties.delivery: unknown property",
    ),
    (
        "user_id is not offered",
        _replace('expect = ["q"]', 'expect = ["q"]\n  properties = { user_id = "guest" }'),
        "properties.user_id: unknown property",
    ),
    (
        "delivery mode",
        _replace('expect = ["q"]', 'expect = ["q"]\n  properties = { delivery_mode = 3 }'),
        "delivery_mode: must be one of 1, 2",
    ),
    (
        "expiration",
        _replace('expect = ["q"]', 'expect = ["q"]\n  properties = { expiration = "soon" }'),
        "expiration: must be milliseconds",
    ),
    (
        "text serializer with a table",
        _replace('expect = ["q"]', 'expect = ["q"]\n  serializer = "text"'),
        "'text' needs a string body",
    ),
    (
        "serializer",
        _replace('expect = ["q"]', 'expect = ["q"]\n  serializer = "yaml"'),
        "serializer: must be one of 'json', 'text', 'pickle'",
    ),
    (
        "worker on no queue",
        _replace('queue = "q"', 'queue = "r"'),
        "workers[0].queue: no queue 'r' is declared",
    ),
    (
        "failure rate above 1",
        _replace('queue = "q"', 'queue = "q"\nfailure_rate = 1.5'),
        "workers[0].failure_rate: must be a number from 0 to 1",
    ),
    (
        "negative prefetch",
        _replace('queue = "q"', 'queue = "q"\nprefetch = -1'),
        "workers[0].prefetch: must be a whole number from 0 to 65535",
    ),
    (
        "too many workers",
        _replace('queue = "q"', 'queue = "q"\ncount = 500'),
        "workers[0].count: must be a whole number from 0 to 50",
    ),
    (
        "worker named like a publisher",
        _replace('name = "w"', 'name = "p"'),
        "publishers and workers: 'p' appears twice",
    ),
    (
        "workers not an array of tables",
        _replace("[[workers]]", "[workers]"),
        "workers: must be an array of tables",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES]
)
def test_a_bad_file_is_refused_saying_where_and_why(text: str, expected: str) -> None:
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(text, name="bad")
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems
    assert str(caught.value).startswith("bad.toml: ")


def test_every_problem_is_reported_at_once() -> None:
    text = _replace('type = "topic"', 'type = "nope"').replace('queue = "q"', 'queue = "r"')
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(text, name="bad")
    assert len(caught.value.problems) == 2


def test_a_bad_scenario_name() -> None:
    with pytest.raises(ScenarioInvalid, match="lower-case letters"):
        parse_scenario(MINIMAL, name="Bad Name")


PLACEHOLDER_CASES = [
    ("plain", None),
    ("{seq}", None),
    ("order {seq} at {now}, id {uuid}, {timestamp}", None),
    ("{{literal}}", None),
    ("{nope}", "unknown placeholder"),
    ("{seq!r}", "unknown placeholder"),
    ("{seq:>5}", "unknown placeholder"),
    ("{", "stray brace"),
    ("}", "stray brace"),
]


@pytest.mark.parametrize(("text", "problem"), PLACEHOLDER_CASES)
def test_placeholders(text: str, problem: str | None) -> None:
    found = placeholder_problem(text)
    assert (found is None) if problem is None else (problem in (found or ""))


CONTEXT = MessageContext(seq=7, uuid="u-1", timestamp=1700000000, now="2023-11-14T22:13:20+00:00")

FILL_CASES = [
    ("{seq}", 7),
    ("{timestamp}", 1700000000),
    ("order {seq}", "order 7"),
    ("{uuid}", "u-1"),
    ("{now}", "2023-11-14T22:13:20+00:00"),
    ("{{seq}}", "{seq}"),
    (
        {"a": ["{seq}", {"b": "{uuid}"}], "n": 3, "f": True},
        {"a": [7, {"b": "u-1"}], "n": 3, "f": True},
    ),
]


@pytest.mark.parametrize(("template", "expected"), FILL_CASES)
def test_fill(template: object, expected: object) -> None:
    assert fill(template, CONTEXT) == expected


def test_render_a_json_message_with_properties_and_headers() -> None:
    scenario = parse_scenario(
        _replace(
            'expect = ["q"]',
            'expect = ["q"]\n  properties = { expiration = 1000, correlation_id = "{uuid}" }\n'
            '  headers = { attempt = "{seq}", who = "w{seq}" }',
        ),
        name="mini",
    )
    message = render(scenario.publishers[0].messages[0], CONTEXT)
    assert message.routing_key == "a.b"
    assert message.body == b'{"n": 7}'
    assert message.properties == {
        "content_type": "application/json",
        "expiration": "1000",
        "correlation_id": "u-1",
        "headers": {"attempt": 7, "who": "w7"},
    }


def test_the_pickle_body_is_plain_data_read_without_unpickling() -> None:
    belery = load_scenario("belery")
    message = render(belery.publisher("belery app (pickle)").messages[0], CONTEXT)
    assert message.properties["content_type"] == "application/x-python-serialize"
    assert message.properties["delivery_mode"] == 2
    opcodes = {op.name for op, _arg, _pos in pickletools.genops(message.body)}
    # Only literal data: nothing that imports or calls (GLOBAL, STACK_GLOBAL, REDUCE...).
    assert not opcodes & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ"}
    assert b"long_running_task" in message.body


def test_a_text_body_is_sent_as_text() -> None:
    scenario = parse_scenario(_replace('body = { n = "{seq}" }', 'body = "hello {seq}"'), name="m")
    message = render(scenario.publishers[0].messages[0], CONTEXT)
    assert (message.body, message.properties["content_type"]) == (b"hello 7", "text/plain")
