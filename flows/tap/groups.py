"""Channel-layer names shared by the tap and its viewers (contracts §2)."""

from __future__ import annotations

import hashlib

GROUP_PREFIX = "flows-tap."
# `manage.py tap` listens here for viewers joining, heart-beating and leaving
# (FLOWS_TAP_CONTROL_CHANNEL: two dashboards sharing one Redis need different ones).
DEFAULT_CONTROL_CHANNEL = "flows-tap-control"


def control_channel() -> str:
    from django.conf import settings

    return getattr(settings, "FLOWS_TAP_CONTROL_CHANNEL", DEFAULT_CONTROL_CHANNEL)


def tap_group(vhost: str) -> str:
    """The group a vhost's tap sends to: ASCII whatever the vhost is called.

    Channels accepts only ASCII letters, digits, `-`, `_` and `.` in group names (under 100
    characters), and vhost names can be anything, so the name carries a hash of the vhost.
    """
    return GROUP_PREFIX + hashlib.sha1(vhost.encode("utf-8")).hexdigest()[:16]  # noqa: S324
