"""A demo scenario: what a file in `flows/demo/scenarios/` declares, read and checked.

A scenario is one TOML file: the exchanges, queues and bindings to declare, the publishers
(exchange, routing keys, bodies, properties, a rate) and the workers (queue, how many,
prefetch, failure rate, requeue) to run, and a few sentences for the audience. `parse_scenario`
is pure: it turns the file's text into a frozen `Scenario`, or raises `ScenarioInvalid` listing
every problem with where it is (`workers[0].prefetch: ...`), so a speaker fixing a file sees
all of them at once. Adding a scenario is adding a file: `available_scenarios()` lists them.

Argument names are RabbitMQ's own (`x-dead-letter-exchange`, `alternate-exchange`, ...) so the
file teaches what the broker is told; unknown ones are refused, a typo would otherwise be
silently ignored by the broker.
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIO_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
# Exchanges every vhost has: a scenario may use them, never declare them.
BUILT_IN_EXCHANGES = frozenset(
    {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"}
)
RESERVED_PREFIXES = ("amq.", "flows-dashboard.")  # the broker's own, the dashboard's own
SERIALIZERS = ("json", "text", "pickle")
PLACEHOLDERS = ("seq", "uuid", "timestamp", "now")
MAX_RATE = 1000.0  # messages per second per publisher: a demo, not a benchmark
MAX_WORKERS = 50
MAX_WORK_MS = 60_000
SHORTSTR_MAX_BYTES = 255

Serializer = Literal["json", "text", "pickle"]


class ScenarioInvalid(ValueError):
    """A scenario file that cannot be used; `problems` says every reason, each with its place."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class UnknownScenario(LookupError):
    def __init__(self, name: str, available: Sequence[str]) -> None:
        self.name = name
        super().__init__(
            f"no scenario named {name!r} (available: {', '.join(available) or 'none'})"
        )


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    durable: bool = True
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BindingSpec:
    source: str
    destination: str
    destination_type: Literal["queue", "exchange"] = "queue"
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageSpec:
    """One message a publisher sends in turn. Strings in `body`, `properties` and `headers`
    may hold placeholders (`{seq}`, `{uuid}`, `{timestamp}`, `{now}`), filled per publish.
    `expect` names the queues the broker should route it to (empty: unroutable)."""

    routing_key: str
    body: Any
    serializer: Serializer
    properties: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, Any] = field(default_factory=dict)
    expect: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublisherSpec:
    """Publishes its messages in turn, `rate` per second (0: only when asked), `limit` in all
    (None: until stopped). Mandatory publishes count the broker's unroutable returns."""

    name: str
    exchange: str
    messages: tuple[MessageSpec, ...]
    rate: float = 1.0
    limit: int | None = None
    mandatory: bool = True
    enabled: bool = True


@dataclass(frozen=True)
class WorkerSpec:
    """`count` workers on one queue, `{name} 1` to `{name} {count}`, each with its own
    connection. Every `1/failure_rate`-th delivery fails (evenly spread, so a rehearsal repeats
    itself) and is rejected, requeued or not; `reply` answers to `reply_to`."""

    name: str
    queue: str
    count: int = 1
    prefetch: int = 1
    failure_rate: float = 0.0
    requeue: bool = True
    work_ms: int = 0
    reply: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    summary: str
    watch_for: str
    notes: tuple[str, ...]
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    bindings: tuple[BindingSpec, ...]
    publishers: tuple[PublisherSpec, ...]
    workers: tuple[WorkerSpec, ...]

    def default_vhost(self) -> str:
        return f"demo-{self.name}"

    def publisher(self, name: str) -> PublisherSpec:
        return _named(self.publishers, name, "publisher")

    def worker(self, name: str) -> WorkerSpec:
        return _named(self.workers, name, "worker")

    def with_publisher(self, name: str, **changes: Any) -> Scenario:
        """This scenario with one publisher's settings changed (a rate, a limit)."""
        self.publisher(name)
        publishers = tuple(
            dataclasses.replace(p, **changes) if p.name == name else p for p in self.publishers
        )
        return dataclasses.replace(self, publishers=publishers)

    def with_worker(self, name: str, **changes: Any) -> Scenario:
        """This scenario with one worker group's settings changed (count, prefetch...)."""
        self.worker(name)
        workers = tuple(
            dataclasses.replace(w, **changes) if w.name == name else w for w in self.workers
        )
        return dataclasses.replace(self, workers=workers)


def _keys(spec: type) -> tuple[str, ...]:
    """The keys a file's table may hold: the fields of what it becomes."""
    return tuple(f.name for f in dataclasses.fields(spec))


def _named(items: Sequence[Any], name: str, kind: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {kind} named {name!r}")


# --- reading files ------------------------------------------------------------------------------


def available_scenarios(directory: Path | None = None) -> list[str]:
    """The scenario files' names (`flows/demo/scenarios/` unless told otherwise)."""
    paths = (directory or SCENARIO_DIR).glob("*.toml")
    return sorted(path.stem for path in paths if SCENARIO_NAME.match(path.stem))


def load_scenario(name: str, directory: Path | None = None) -> Scenario:
    """Read and check `<directory>/<name>.toml`."""
    directory = directory or SCENARIO_DIR
    available = available_scenarios(directory)
    if name not in available:
        raise UnknownScenario(name, available)
    path = directory / f"{name}.toml"
    return parse_scenario(path.read_text(encoding="utf-8"), name=name, source=path.name)


def parse_scenario(text: str, *, name: str, source: str | None = None) -> Scenario:
    """The scenario a file's text declares, or ScenarioInvalid naming every problem."""
    source = source or f"{name}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioInvalid(source, [f"not valid TOML: {exc}"]) from exc
    reader = _Reader()
    scenario = reader.scenario(data, name)
    if reader.problems:
        raise ScenarioInvalid(source, reader.problems)
    assert scenario is not None
    return scenario


# --- checking -----------------------------------------------------------------------------------

_ABSENT = object()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _non_negative_int(value: Any) -> str | None:
    return None if _is_int(value) and value >= 0 else "must be a whole number >= 0"


def _positive_int(value: Any) -> str | None:
    return None if _is_int(value) and value > 0 else "must be a whole number > 0"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _one_of(*choices: Any) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return "must be one of " + ", ".join(map(repr, choices))

    return check


def _number_between(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if _is_number(value) and low <= value <= high:
            return None
        return f"must be a number from {low:g} to {high:g}"

    return check


def _strings(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return None
    return "must be an array of strings"


def _int_between(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if _is_int(value) and low <= value <= high:
            return None
        return f"must be a whole number from {low} to {high}"

    return check


QUEUE_ARGUMENTS: dict[str, Callable[[Any], str | None]] = {
    "x-dead-letter-exchange": _text,
    "x-dead-letter-routing-key": _text,
    "x-message-ttl": _non_negative_int,
    "x-expires": _positive_int,
    "x-max-length": _non_negative_int,
    "x-max-length-bytes": _non_negative_int,
    "x-overflow": _one_of("drop-head", "reject-publish", "reject-publish-dlx"),
    "x-max-priority": _int_between(1, 255),
    "x-queue-type": _one_of("classic", "quorum"),
    "x-queue-mode": _one_of("default", "lazy"),
    "x-single-active-consumer": _flag,
}
EXCHANGE_ARGUMENTS: dict[str, Callable[[Any], str | None]] = {"alternate-exchange": _text}


def _expiration(value: Any) -> str | None:
    if _is_int(value) and value >= 0:
        return None
    if isinstance(value, str) and value.isdigit():
        return None
    return "must be milliseconds: a whole number >= 0"


MESSAGE_PROPERTIES: dict[str, Callable[[Any], str | None]] = {
    "content_type": _text,
    "content_encoding": _text,
    "correlation_id": _text,
    "reply_to": _text,
    "message_id": _text,
    "type": _text,
    "app_id": _text,
    "delivery_mode": _one_of(1, 2),
    "priority": _int_between(0, 255),
    "expiration": _expiration,
}
# `user_id` is left out on purpose: the broker closes the channel unless it names the user
# the connection signed in as, which a scenario file cannot know.


def placeholder_problem(text: str) -> str | None:
    """Why `text` is not a valid template (`{seq}`, `{uuid}`...; `{{` for a brace), or None."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"has a stray brace ({exc}; write {{{{ or }}}} for a literal brace)"
    for _literal, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in PLACEHOLDERS or spec or conversion:
            return (
                f"has an unknown placeholder {{{field_name}}} (known: "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                + "; write {{ or }} for a literal brace)"
            )
    return None


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_in(item)]
    return []


class _Reader:
    """Reads a decoded TOML document into the model, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # Each table's keys are checked against what it may hold, so a misspelt key is reported
    # instead of silently taking its default.
    def table(self, value: Any, where: str, allowed: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(where, "must be a table")
            return {}
        for key in value:
            if key not in allowed:
                self.problem(
                    f"{where}.{key}" if where else key,
                    "unknown key (allowed: " + ", ".join(allowed) + ")",
                )
        return value

    def field(
        self,
        data: Mapping[str, Any],
        where: str,
        key: str,
        check: Callable[[Any], str | None],
        default: Any = _ABSENT,
    ) -> Any:
        place = f"{where}.{key}" if where else key
        if key not in data:
            if default is _ABSENT:
                self.problem(place, "is required")
            return None if default is _ABSENT else default
        value = data[key]
        message = check(value)
        if message:
            self.problem(place, message)
            return None if default is _ABSENT else default
        return value

    def flags(self, data: Mapping[str, Any], where: str, **defaults: bool) -> dict[str, bool]:
        """The true-or-false fields named by `defaults`, each its default when absent."""
        return {
            key: self.field(data, where, key, _flag, default) for key, default in defaults.items()
        }

    def name_field(self, data: Mapping[str, Any], where: str, key: str = "name") -> str:
        value = self.field(data, where, key, _text)
        if value is None:
            return ""
        if value == "":
            self.problem(f"{where}.{key}", "must not be empty")
        elif len(value.encode()) > SHORTSTR_MAX_BYTES:
            self.problem(f"{where}.{key}", f"must be at most {SHORTSTR_MAX_BYTES} bytes")
        return value

    def items(self, data: Mapping[str, Any], key: str) -> list[tuple[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.problem(key, "must be an array of tables ([[" + key + "]])")
            return []
        return [(f"{key}[{index}]", item) for index, item in enumerate(value)]

    def each(
        self, data: Mapping[str, Any], key: str, read: Callable[[str, Any], Any]
    ) -> tuple[Any, ...]:
        return tuple(item for where, value in self.items(data, key) if (item := read(where, value)))

    def arguments(
        self,
        data: Mapping[str, Any],
        where: str,
        known: Mapping[str, Callable[[Any], str | None]] | None,
    ) -> dict[str, Any]:
        """`known` None: any argument (a headers binding's match)."""
        value = data.get("arguments", {})
        if not isinstance(value, dict):
            self.problem(f"{where}.arguments", "must be a table")
            return {}
        if known is None:
            return dict(value)
        for key, argument in value.items():
            place = f"{where}.arguments.{key}"
            if key not in known:
                self.problem(place, "unknown argument (known: " + ", ".join(known) + ")")
                continue
            message = known[key](argument)
            if message:
                self.problem(place, message)
        return dict(value)

    # --- the document ---

    def scenario(self, data: dict[str, Any], name: str) -> Scenario | None:
        data = self.table(data, "", _keys(Scenario))
        if not SCENARIO_NAME.match(name):
            self.problem("name", f"{name!r} must be lower-case letters, digits and dashes")
        declared = data.get("name", name)
        if declared != name:
            self.problem("name", f"is {declared!r} but the file is named {name!r}.toml")
        title = self.field(data, "", "title", _text) or ""
        summary = self.field(data, "", "summary", _text) or ""
        watch_for = self.field(data, "", "watch_for", _text) or ""
        notes = self.field(data, "", "notes", _strings, default=[])
        exchanges = self.each(data, "exchanges", self.exchange)
        queues = self.each(data, "queues", self.queue)
        bindings = self.each(data, "bindings", self.binding)
        publishers = self.each(data, "publishers", self.publisher)
        workers = self.each(data, "workers", self.worker)
        scenario = Scenario(
            name=name,
            title=title,
            summary=summary,
            watch_for=watch_for,
            notes=tuple(notes),
            exchanges=exchanges,
            queues=queues,
            bindings=bindings,
            publishers=publishers,
            workers=workers,
        )
        self.cross_references(scenario)
        return scenario

    def exchange(self, where: str, data: Any) -> ExchangeSpec | None:
        data = self.table(data, where, _keys(ExchangeSpec))
        if not data:
            return None
        return ExchangeSpec(
            name=self.name_field(data, where),
            type=self.field(data, where, "type", _one_of(*EXCHANGE_TYPES)) or "direct",
            **self.flags(data, where, durable=True, auto_delete=False, internal=False),
            arguments=self.arguments(data, where, EXCHANGE_ARGUMENTS),
        )

    def queue(self, where: str, data: Any) -> QueueSpec | None:
        data = self.table(data, where, _keys(QueueSpec))
        if not data:
            return None
        return QueueSpec(
            name=self.name_field(data, where),
            **self.flags(data, where, durable=True, auto_delete=False),
            arguments=self.arguments(data, where, QUEUE_ARGUMENTS),
        )

    def binding(self, where: str, data: Any) -> BindingSpec | None:
        data = self.table(data, where, _keys(BindingSpec))
        if not data:
            return None
        return BindingSpec(
            source=self.field(data, where, "source", _text) or "",
            destination=self.name_field(data, where, "destination"),
            destination_type=self.field(
                data, where, "destination_type", _one_of("queue", "exchange"), "queue"
            ),
            routing_key=self.field(data, where, "routing_key", _text, ""),
            arguments=self.arguments(data, where, None),
        )

    def properties(self, data: Mapping[str, Any], where: str) -> dict[str, Any]:
        value = data.get("properties", {})
        if not isinstance(value, dict):
            self.problem(f"{where}.properties", "must be a table")
            return {}
        for key, prop in value.items():
            place = f"{where}.properties.{key}"
            if key not in MESSAGE_PROPERTIES:
                self.problem(
                    place, "unknown property (known: " + ", ".join(MESSAGE_PROPERTIES) + ")"
                )
                continue
            message = MESSAGE_PROPERTIES[key](prop)
            if message:
                self.problem(place, message)
            elif isinstance(prop, str):
                self.template(prop, place)
        return dict(value)

    def headers(self, data: Mapping[str, Any], where: str) -> dict[str, Any]:
        value = data.get("headers", {})
        if not isinstance(value, dict):
            self.problem(f"{where}.headers", "must be a table")
            return {}
        for text in _strings_in(value):
            self.template(text, f"{where}.headers")
        return dict(value)

    def template(self, text: str, where: str) -> None:
        message = placeholder_problem(text)
        if message:
            self.problem(where, f"{text!r} {message}")

    def message(self, where: str, data: Any, defaults: Mapping[str, Any]) -> MessageSpec | None:
        data = self.table(data, where, _keys(MessageSpec))
        if not data:
            return None
        routing_key = self.field(data, where, "routing_key", _text, defaults.get("routing_key"))
        if routing_key is None:
            self.problem(f"{where}.routing_key", "is required (here or on the publisher)")
        body = data.get("body", "")
        if not isinstance(body, str | dict | list):
            self.problem(f"{where}.body", "must be a string, a table or an array")
        for text in _strings_in(body):
            self.template(text, f"{where}.body")
        default_serializer = "text" if isinstance(body, str) else "json"
        serializer = self.field(
            data, where, "serializer", _one_of(*SERIALIZERS), default_serializer
        )
        if serializer == "text" and not isinstance(body, str):
            self.problem(f"{where}.serializer", "'text' needs a string body")
        expect = self.field(data, where, "expect", _strings, default=[])
        return MessageSpec(
            routing_key=routing_key or "",
            body=body,
            serializer=serializer,
            properties={**defaults["properties"], **self.properties(data, where)},
            headers={**defaults["headers"], **self.headers(data, where)},
            expect=tuple(expect),
        )

    def publisher(self, where: str, data: Any) -> PublisherSpec | None:
        # The publisher's routing key, properties and headers are its messages' defaults.
        data = self.table(
            data, where, (*_keys(PublisherSpec), "routing_key", "properties", "headers")
        )
        if not data:
            return None
        defaults = {
            "routing_key": self.field(data, where, "routing_key", _text, None),
            "properties": self.properties(data, where),
            "headers": self.headers(data, where),
        }
        rate = self.field(data, where, "rate", _number_between(0, MAX_RATE), 1.0)
        messages = self.each(
            data, "messages", lambda place, item: self.message(f"{where}.{place}", item, defaults)
        )
        if not messages and isinstance(data.get("messages", []), list):
            self.problem(f"{where}.messages", "needs at least one [[publishers.messages]]")
        return PublisherSpec(
            name=self.name_field(data, where),
            exchange=self.field(data, where, "exchange", _text) or "",
            messages=messages,
            rate=float(rate),
            limit=self.field(data, where, "limit", _positive_int, None),
            **self.flags(data, where, mandatory=True, enabled=True),
        )

    def worker(self, where: str, data: Any) -> WorkerSpec | None:
        data = self.table(data, where, _keys(WorkerSpec))
        if not data:
            return None
        return WorkerSpec(
            name=self.name_field(data, where),
            queue=self.name_field(data, where, "queue"),
            count=self.field(data, where, "count", _int_between(0, MAX_WORKERS), 1),
            # 0 is AMQP's "no limit": allowed, it is one of the things to show.
            prefetch=self.field(data, where, "prefetch", _int_between(0, 65535), 1),
            failure_rate=float(self.field(data, where, "failure_rate", _number_between(0, 1), 0.0)),
            **self.flags(data, where, requeue=True),
            work_ms=self.field(data, where, "work_ms", _int_between(0, MAX_WORK_MS), 0),
            **self.flags(data, where, reply=False, enabled=True),
        )

    # --- what refers to what ---

    def cross_references(self, scenario: Scenario) -> None:
        exchanges = {e.name for e in scenario.exchanges}
        queues = {q.name for q in scenario.queues}
        usable_exchanges = exchanges | BUILT_IN_EXCHANGES
        self.unique("exchanges", [e.name for e in scenario.exchanges])
        self.unique("queues", [q.name for q in scenario.queues])
        self.unique(
            "publishers and workers",
            [p.name for p in scenario.publishers] + [w.name for w in scenario.workers],
        )
        # The argument of each that names another exchange: it must be one there will be.
        declared: list[tuple[str, Sequence[ExchangeSpec | QueueSpec], str]] = [
            ("exchanges", scenario.exchanges, "alternate-exchange"),
            ("queues", scenario.queues, "x-dead-letter-exchange"),
        ]
        for kind, objects, argument in declared:
            for index, item in enumerate(objects):
                self.not_reserved(f"{kind}[{index}].name", item.name)
                named = item.arguments.get(argument)
                if isinstance(named, str) and named not in usable_exchanges:
                    self.problem(
                        f"{kind}[{index}].arguments.{argument}",
                        f"names exchange {named!r}, which the scenario does not declare",
                    )
        for index, binding in enumerate(scenario.bindings):
            where = f"bindings[{index}]"
            if binding.source == "":
                self.problem(f"{where}.source", "the default exchange cannot be bound")
            elif binding.source not in usable_exchanges:
                self.problem(f"{where}.source", f"no exchange {binding.source!r} is declared")
            targets = queues if binding.destination_type == "queue" else usable_exchanges
            ours = binding.source in exchanges or binding.destination in (exchanges | queues)
            if binding.source and binding.destination in targets and not ours:
                # Unloading removes a scenario's bindings with its own exchanges and queues.
                self.problem(where, "binds two built-in exchanges: one end must be the scenario's")
            if binding.destination and binding.destination not in targets:
                self.problem(
                    f"{where}.destination",
                    f"no {binding.destination_type} {binding.destination!r} is declared",
                )
        for index, publisher in enumerate(scenario.publishers):
            where = f"publishers[{index}]"
            if publisher.exchange not in usable_exchanges:
                self.problem(f"{where}.exchange", f"no exchange {publisher.exchange!r} is declared")
            for number, message in enumerate(publisher.messages):
                for expected in message.expect:
                    if expected not in queues:
                        self.problem(
                            f"{where}.messages[{number}].expect",
                            f"names queue {expected!r}, which the scenario does not declare",
                        )
        for index, worker in enumerate(scenario.workers):
            if worker.queue and worker.queue not in queues:
                self.problem(f"workers[{index}].queue", f"no queue {worker.queue!r} is declared")

    def unique(self, what: str, names: Sequence[str]) -> None:
        seen: set[str] = set()
        for name in names:
            if name in seen:
                self.problem(what, f"{name!r} appears twice")
            seen.add(name)

    def not_reserved(self, where: str, name: str) -> None:
        for prefix in RESERVED_PREFIXES:
            if name.startswith(prefix):
                self.problem(where, f"{name!r}: names starting {prefix!r} are reserved")
