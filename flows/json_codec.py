"""The one JSON encoder and decoder of the tap's hot path: orjson, with `json` behind it.

The tap reads and writes JSON for every message it sees (a JSON body parsed to mask it and
to know it is JSON, pretty-printed when shown, every event encoded for the JSON stream).
orjson does each several times faster than `json` (benchmarks/tap_bench.py --profile: the
`json` module's pretty-printer alone was 18% of the dashboard's CPU under a flood). It
refuses or misreads a few things `json` takes, so each function falls back to `json` for
them: NaN and Infinity, integers beyond 64 bits, lone surrogates in a string. `pretty`
writes the same text either way (`json.dumps(value, indent=2, ensure_ascii=False)`), so a
body that was pretty already is recognised as such whichever encoder made it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# orjson reads an integer beyond 64 bits as a float, silently (1.2345678901234568e+29): a
# run of 19 digits or more may be one, and is left to `json`, which keeps it exact.
_LONG_DIGITS = re.compile(r"\d{19}")


def loads(text: str) -> Any:
    """Parse JSON; raises ValueError (as `json.loads` does) when it is not JSON."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, lone surrogates; or really not JSON
    return json.loads(text)


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON, UTF-8 (ASCII with escapes when orjson refuses the value)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: huge integers, lone surrogates, odd keys
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def pretty(value: Any) -> str:
    """JSON text indented by two spaces, as `json.dumps(value, indent=2, ensure_ascii=False)`."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    except TypeError:
        return json.dumps(value, indent=2, ensure_ascii=False)


__all__ = ["dumps_bytes", "loads", "pretty"]
