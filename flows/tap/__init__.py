"""The tap: capture every message on a vhost without changing it, and feed it to viewers.

- `events`: one broker delivery -> one tap event (contracts §1), pure.
- `viewer`: per-viewer filter, sampling and accounting; `join_tap` / `leave_tap`.
- `groups`: the channel-layer names (`tap_group`).
"""

from flows.tap.groups import tap_group

__all__ = ["tap_group"]
