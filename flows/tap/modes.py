"""How a tap captures a vhost's messages, named once.

- `bindings`: one queue bound to every exchange it can be bound to;
- `firehose`: the vhost's tracing, read from `amq.rabbitmq.trace`;
- `auto`: what a viewer asks for by default; the tap manager resolves it to the firehose
  where tracing is already on (or configured), to bindings otherwise.

A running `Tap` is always in a `CaptureMode`; a viewer asks for a `TapMode`. Literals, not
an enum: modes travel as plain strings through URLs, JSON and the channel layer. A viewer's
`mode=` is read by `flows.websockets.query.parse_tap_mode`.
"""

from __future__ import annotations

from typing import Literal, get_args

CaptureMode = Literal["bindings", "firehose"]
TapMode = Literal["auto", CaptureMode]

CAPTURE_MODES: tuple[CaptureMode, ...] = get_args(CaptureMode)
TAP_MODES: tuple[TapMode, ...] = ("auto", *CAPTURE_MODES)
DEFAULT_TAP_MODE: TapMode = "auto"
