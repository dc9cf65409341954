"""Masking: the values that must never leave the server, found by their names.

`FLOWS_MASK` holds comma-separated shell-style patterns (`password,*card*`), matched
case-insensitively against a whole name: a message header's name (at any depth: tables in
tables, tables in arrays), a property's name, and a key of a JSON body (at any depth). The
value under a matching name, whatever it is (text, number, table, array), is replaced by
`MASKED` when the tap builds its event (`flows.tap.events`), which is the only place events
are made: so the live feed and its details, the JSON stream `/ws/tap/`, the export and the
viewer filters all see the masked value, and a filter cannot find the hidden one.

A body that is not JSON (text, form-encoded, binary) is shown as it is: nothing in it has a
name to match. `user_id`, `reply_to` and the other properties are masked only when a pattern
names them.

Everything here is pure and runs for every message the tap sees, so it avoids work: names
are matched once each (cached), and a JSON body is walked only when its text could hold a
matching key at all.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASKED = "••••••"
DEFAULT_MASK_PATTERNS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "*card*",
)
# Distinct names remembered; past this the memory starts again (names are few in practice).
_MAX_CACHED_NAMES = 10_000
_GLOB_SPECIALS = re.compile(r"[*?]")
_CONTAINERS = frozenset({dict, list})
# Celery's protocol 2 headers holding a task's args and kwargs as Python reprs: text with no
# names to match, so withheld whole when they may name a masked key.
REPR_HEADERS = ("argsrepr", "kwargsrepr")


class Mask:
    """Which names hide their values, and the masking of headers, properties and bodies."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(p.strip().casefold() for p in patterns if p.strip())
        self._regex = (
            re.compile("|".join(fnmatch.translate(p) for p in self.patterns))
            if self.patterns
            else None
        )
        self._literals = _required_literals(self.patterns)
        self._names: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Mask({list(self.patterns)!r})"

    def __bool__(self) -> bool:
        return self._regex is not None

    def hides(self, name: str) -> bool:
        """Whether a value named `name` is masked."""
        known = self._names.get(name)
        if known is not None:
            return known
        hidden = self._regex is not None and self._regex.match(name.casefold()) is not None
        if len(self._names) >= _MAX_CACHED_NAMES:
            self._names.clear()
        self._names[name] = hidden
        return hidden

    def value(self, value: Any) -> Any:
        """JSON data with the value of every matching key replaced, at any depth.

        Returns `value` itself when nothing in it is masked (events are shared read-only,
        so an unchanged part need not be copied): a changed part is a new object.
        """
        if self._regex is None:
            return value
        return self._walk(value)

    def json_value(self, value: Any, text: str) -> tuple[Any, bool]:
        """(`value` masked, whether anything was), for a JSON body parsed from `text`.

        `text` lets a body without any candidate key be passed over without a walk: a key
        matching a pattern contains each run of plain characters of that pattern, so its
        text does too, unless it is written with escapes (then it is walked anyway).
        """
        if not self.may_hide_in(text):
            return value, False
        masked = self._walk(value)
        return masked, masked is not value

    def headers(self, headers: dict[str, Any]) -> dict[str, Any]:
        """Headers masked by name (`value`), and Celery's reprs (`REPR_HEADERS`) withheld
        when their text may hold a masked key: `{'token': 't'}` has no name to match."""
        masked = self.value(headers)
        if not any(self._repr_hides(masked.get(name)) for name in REPR_HEADERS):
            return masked
        return {
            name: MASKED if name in REPR_HEADERS and self._repr_hides(item) else item
            for name, item in masked.items()
        }

    def _repr_hides(self, text: Any) -> bool:
        return type(text) is str and self.may_hide_in(text)

    def may_hide_in(self, text: str) -> bool:
        """False when JSON `text` certainly has no key to mask (see `json_value`)."""
        if self._regex is None:
            return False
        if self._literals is None or "\\" in text:
            return True
        folded = text.casefold()
        # A loop, not any() over a generator: twice as fast, and this runs for every JSON body.
        for literal in self._literals:  # noqa: SIM110
            if literal in folded:
                return True
        return False

    def _walk(self, value: Any) -> Any:
        # JSON objects and header tables are plain dicts and lists here (`json_safe`), and
        # checking the exact type is much faster than `isinstance` against an ABC.
        kind = type(value)
        if kind is dict:
            names = self._names
            for key, item in value.items():
                hidden = names.get(key)
                if hidden is None:
                    hidden = type(key) is str and self.hides(key)
                if hidden or (type(item) in _CONTAINERS and self._walk(item) is not item):
                    break
            else:
                return value
            return {
                key: MASKED if type(key) is str and self.hides(key) else self._walk(item)
                for key, item in value.items()
            }
        if kind is list:
            walked = [self._walk(item) for item in value]
            if any(new is not old for new, old in zip(walked, value, strict=True)):
                return walked
            return value
        if isinstance(value, Mapping):  # another mapping type: as a dict
            return self._walk(dict(value))
        return value


def _required_literals(patterns: tuple[str, ...]) -> tuple[str, ...] | None:
    """For each pattern, its longest run of plain characters, which every match contains.

    None when some pattern has no such run (`*`, `?`, or a `[...]` set, which this does not
    take apart): then every JSON body is walked.
    """
    literals = []
    for pattern in patterns:
        if "[" in pattern:
            return None
        longest = max(_GLOB_SPECIALS.split(pattern), key=len)
        if not longest:
            return None
        literals.append(longest)
    return tuple(literals)


DEFAULT_MASK = Mask(DEFAULT_MASK_PATTERNS)
NO_MASK = Mask(())


def configured_mask() -> Mask:
    """The deployment's mask: the patterns of `settings.FLOWS_MASK` (README, Configuration)."""
    from django.conf import settings

    patterns = tuple(settings.FLOWS_MASK)
    return DEFAULT_MASK if patterns == DEFAULT_MASK.patterns else Mask(patterns)
