"""Channel-layer names shared by the tap and its viewers (contracts §2)."""

from __future__ import annotations

import hashlib

GROUP_PREFIX = "flows-tap."
# `manage.py tap` listens here for viewers joining, heart-beating and leaving.
CONTROL_CHANNEL = "flows-tap-control"


def tap_group(vhost: str) -> str:
    """The group a vhost's tap sends to: ASCII whatever the vhost is called.

    Channels accepts only ASCII letters, digits, `-`, `_` and `.` in group names (under 100
    characters), and vhost names can be anything, so the name carries a hash of the vhost.
    """
    return GROUP_PREFIX + hashlib.sha1(vhost.encode("utf-8")).hexdigest()[:16]  # noqa: S324
