"""How much a decoder may read, build and show, and for how long.

Every decoder reads bodies from a shared broker, so every one is bounded: the input it
reads, what a decompression may produce (a zip bomb is a few KiB), how deep and how large
a structure it builds, how much text it renders, and how long it runs. Past a bound a
decoder stops and says which bound it met; it never raises out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# The tap's previews are at most 64 KiB (FLOWS_TAP_PREVIEW_LIMIT); a larger input is cut.
MAX_INPUT_BYTES = 1024 * 1024
MAX_DECOMPRESSED_BYTES = 1024 * 1024
MAX_DEPTH = 32  # nested containers shown; deeper ones become a marker
MAX_NODES = 20_000  # values shown per body; the rest are counted, not shown
MAX_TEXT_CHARS = 32 * 1024  # characters of rendered text (a disassembly, a literal reading)
TIME_BUDGET_S = 0.25


class LimitReached(Exception):
    """A decoder met one of its bounds (the message says which)."""


@dataclass
class Budget:
    """A deadline for the decoders written in Python (pickle reading, protobuf walking)."""

    seconds: float = TIME_BUDGET_S
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitReached(f"took longer than {self.seconds:g} s")
