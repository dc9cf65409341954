"""What the tap and its viewers say to each other over the channel layer, and where.

A vhost's tap (`flows.tap.manager.TapRunner`) sends to the group of each selection its
viewers asked for (`selection_group`: one per distinct filter and rate, `flows.tap.selection`):

- `tap.batch`: the events the selection chose, in tap order, with how many it filtered and
  sampled out and the tap's status as of the batch's last event; `run` names the tap run (a
  restarted tap starts a new one), `first_seq`/`last_seq` (of the whole batch, chosen or not)
  let a viewer count the batches it missed;
- `tap.status`: the status alone, on changes and about once a second, so a quiet tap is
  still seen to be alive.

Viewers (`flows.tap.viewer.join_tap`) tell a tap in another process that they joined, are
still there, or left with `tap.join` / `tap.heartbeat` / `tap.leave` on `control_channel()`.
Those viewers are also in `viewers_group()`, where a tap process that starts (`manage.py
tap`, first or again after dying) says `tap.process_started`: each viewer joins again at
once, without waiting for its next heartbeat.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, TypedDict

from flows.tap.events import TapEvent

GROUP_PREFIX = "flows-tap."
# `manage.py tap` listens here for viewers joining, heart-beating and leaving
# (FLOWS_TAP_CONTROL_CHANNEL: two dashboards sharing one Redis need different ones).
DEFAULT_CONTROL_CHANNEL = "flows-tap-control"


def control_channel() -> str:
    from django.conf import settings

    return getattr(settings, "FLOWS_TAP_CONTROL_CHANNEL", DEFAULT_CONTROL_CHANNEL)


def viewers_group() -> str:
    """Every viewer of a tap in another process (one per control channel, so per dashboard)."""
    return control_channel() + ".viewers"


def tap_group(vhost: str) -> str:
    """The group a vhost's tap sends to: ASCII whatever the vhost is called.

    Channels accepts only ASCII letters, digits, `-`, `_` and `.` in group names (under 100
    characters), and vhost names can be anything, so the name carries a hash of the vhost.
    """
    return GROUP_PREFIX + hashlib.sha1(vhost.encode("utf-8")).hexdigest()[:16]  # noqa: S324


def selection_group(vhost: str, selection_key: str) -> str:
    """The group of the vhost's viewers that share one selection (`flows.tap.selection`)."""
    return f"{tap_group(vhost)}.{selection_key}"


class _TapBatch(TypedDict):
    type: Literal["tap.batch"]
    vhost: str
    run: str
    first_seq: int
    last_seq: int
    events: list[TapEvent]
    status: dict[str, Any]


class TapBatchMessage(_TapBatch, total=False):
    """A batch as a selection's group gets it: `events` are those the selection chose, out
    of `last_seq - first_seq + 1` (gaps aside); the others it filtered or sampled out."""

    selection: str  # the selection's key
    filtered_out: int
    sampled_out: int


class TapStatusMessage(TypedDict):
    type: Literal["tap.status"]
    vhost: str
    # mode, state, coverage, counts, gaps, error, queue (`Tap.status`), run, process (the tap
    # manager's id: another one means the tap process restarted) and last_seq (`TapRunner`)
    status: dict[str, Any]


class TapProcessStartedMessage(TypedDict):
    type: Literal["tap.process_started"]
    process: str
