"""`flows.masking`: which names hide their values, and what a masked header, property or JSON
body looks like (the tap's events are built masked: `tests/tap/test_events.py`)."""

from __future__ import annotations

import json
from typing import Any

import pika
import pytest

from flows.masking import DEFAULT_MASK, DEFAULT_MASK_PATTERNS, MASKED, NO_MASK, Mask
from flows.tap.events import body_preview, from_binding_delivery
from tests.support.tap_events import published, published_via_bindings


@pytest.mark.parametrize(
    ("name", "hidden"),
    [
        ("password", True),
        ("Password", True),
        ("PASSWORD", True),
        ("passwd", True),
        ("secret", True),
        ("token", True),
        ("Authorization", True),
        ("api_key", True),
        ("card", True),
        ("credit_card_number", True),
        ("CardNumber", True),
        ("x-card", True),
        # Whole names: a default pattern without a wildcard matches that name only.
        ("db_password", False),
        ("tokens", False),
        ("secretary", False),
        ("api-key", False),
        ("user_id", False),
        ("content_type", False),
        ("x-death", False),
        ("", False),
    ],
)
def test_default_patterns(name: str, hidden: bool) -> None:
    assert DEFAULT_MASK.hides(name) is hidden


@pytest.mark.parametrize(
    ("patterns", "name", "hidden"),
    [
        (["*password*"], "db_password", True),
        (["*password*"], "PASSWORD_HASH", True),
        (["x-?"], "X-A", True),
        (["x-?"], "x-ab", False),
        (["[ab]c"], "BC", True),
        (["[ab]c"], "cc", False),
        ([" token ", ""], "Token", True),  # blanks around a pattern, and empty ones, dropped
        (["user_id"], "user_id", True),
        ([], "password", False),
        (["*"], "anything", True),
        (["stra\u00dfe"], "STRASSE", True),  # case folded, not merely lower-cased
    ],
)
def test_configured_patterns(patterns: list[str], name: str, hidden: bool) -> None:
    assert Mask(patterns).hides(name) is hidden


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"password": "hunter2", "user": "bob"}, {"password": MASKED, "user": "bob"}),
        # Whatever the value: a table, an array, a number, null.
        (
            {"token": {"a": 1}, "secret": [1, 2], "passwd": 7, "api_key": None},
            {"token": MASKED, "secret": MASKED, "passwd": MASKED, "api_key": MASKED},
        ),
        # At any depth, in tables and in arrays of tables.
        (
            {"auth": {"creds": {"Password": "x"}}, "list": [{"card_no": "4111"}, {"ok": 1}]},
            {"auth": {"creds": {"Password": MASKED}}, "list": [{"card_no": MASKED}, {"ok": 1}]},
        ),
        ([{"token": "t"}, "token", 3], [{"token": MASKED}, "token", 3]),
        # Only names are matched: a value that reads "password" stays.
        ({"field": "password"}, {"field": "password"}),
        ("password", "password"),
        (42, 42),
    ],
)
def test_masked_values(value: Any, expected: Any) -> None:
    assert DEFAULT_MASK.value(value) == expected


def test_an_unmasked_value_is_returned_as_it_is() -> None:
    headers = {"x-death": [{"queue": "q", "count": 1}], "region": "eu"}
    assert DEFAULT_MASK.value(headers) is headers
    assert NO_MASK.value({"password": "x"}) == {"password": "x"}


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (b'{"password": "hunter2", "n": 1}', {"password": MASKED, "n": 1}),
        (b'{"user": {"Token": "abc"}}', {"user": {"Token": MASKED}}),
        (b'[{"card": "4111 1111 1111 1111"}]', [{"card": MASKED}]),
        # A key written with escapes is still a key.
        (b'{"pass\\u0077ord": "hunter2"}', {"password": MASKED}),
        (b'{"note": "my password is hunter2"}', {"note": "my password is hunter2"}),
        (b'{"passwords": ["a"]}', {"passwords": ["a"]}),
    ],
)
@pytest.mark.parametrize("pretty", [True, False], ids=["pretty", "deferred"])
def test_json_bodies_are_masked_by_key(body: bytes, shown: Any, pretty: bool) -> None:
    preview = body_preview(body, pretty=pretty)
    assert preview["encoding"] == "json"
    assert json.loads(preview["preview"]) == shown
    assert preview["size"] == len(body)
    assert ("hunter2" in preview["preview"]) is ("hunter2" in json.dumps(shown))


@pytest.mark.parametrize(
    "body",
    [
        b"password=hunter2&user=bob",  # form-encoded text: no names to match
        b'{"password": "hunter2"',  # JSON that does not parse is text
        b"\xff\xfepassword",  # binary
    ],
)
def test_bodies_that_are_not_json_are_shown_as_they_are(body: bytes) -> None:
    preview = body_preview(body)
    assert preview["encoding"] != "json"
    assert MASKED not in preview["preview"]


def test_a_long_json_body_is_masked_whole_then_cut() -> None:
    body = json.dumps({"items": ["x" * 100] * 50, "password": "hunter2"}).encode()
    preview = body_preview(body, limit=1000)
    assert preview["truncated"] is True
    assert preview["size"] == len(body)
    assert "hunter2" not in preview["preview"]
    # Masked down to fit the limit, it is shown whole.
    short = json.dumps({"password": "hunter2" * 200}).encode()
    whole = body_preview(short, limit=1000)
    assert (whole["encoding"], whole["truncated"]) == ("json", False)
    assert json.loads(whole["preview"]) == {"password": MASKED}


def test_events_are_built_masked_headers_properties_and_body() -> None:
    event = published(
        headers={"Authorization": "Bearer abc", "nested": {"token": "t"}, "region": "eu"},
        properties={"content_type": "application/json", "user_id": "guest"},
        body=b'{"password": "hunter2", "amount": 3}',
    )
    assert event["headers"] == {
        "Authorization": MASKED,
        "nested": {"token": MASKED},
        "region": "eu",
    }
    assert event["properties"]["user_id"] == "guest"  # not masked unless a pattern names it
    assert json.loads(event["body"]["preview"]) == {"password": MASKED, "amount": 3}
    assert "hunter2" not in json.dumps(event) and "Bearer" not in json.dumps(event)


@pytest.mark.parametrize(
    ("headers", "shown"),
    [
        (
            {"task": "t", "argsrepr": "(1,)", "kwargsrepr": "{'token': 'abc'}"},
            {"task": "t", "argsrepr": "(1,)", "kwargsrepr": MASKED},
        ),
        ({"argsrepr": "('hunter2', {'password': 1})"}, {"argsrepr": MASKED}),
        ({"argsrepr": "(1, 2)", "kwargsrepr": "{}"}, {"argsrepr": "(1, 2)", "kwargsrepr": "{}"}),
        ({"note": "{'token': 'abc'}"}, {"note": "{'token': 'abc'}"}),  # by name elsewhere
    ],
)
def test_celery_repr_headers_are_withheld_when_they_may_name_a_masked_key(headers, shown) -> None:
    assert published(headers=headers)["headers"] == shown


def test_a_property_is_masked_when_a_pattern_names_it() -> None:
    mask = Mask(["user_id", "reply_to"])
    event = from_binding_delivery(
        seq=1,
        vhost="v",
        exchange="x",
        routing_key="k",
        properties=pika.BasicProperties(user_id="guest", reply_to="amq.rabbitmq.reply-to"),
        body=b"{}",
        received_at=0.0,
        mask=mask,
    )
    assert event["properties"] == {"reply_to": MASKED, "user_id": MASKED}
    assert event["user"] == MASKED


def test_the_default_patterns_are_the_documented_ones() -> None:
    assert DEFAULT_MASK_PATTERNS == (
        "password",
        "passwd",
        "secret",
        "token",
        "authorization",
        "api_key",
        "*card*",
    )
    assert published_via_bindings(headers={"secret": "s"})["headers"] == {"secret": MASKED}
