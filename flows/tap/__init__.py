"""The tap: capture every message on a vhost without changing it, and feed it to viewers.

- `events`: one broker delivery -> one `TapEvent` (its shape is defined there), pure.
- `modes`: the tap modes (`bindings`, `firehose`, and `auto` for viewers).
- `coverage`: which bindings a bindings-mode tap needs, what it cannot see (pure).
- `tap`: `Tap`, one vhost's pika consumer on its own thread (bindings or firehose mode).
- `firehose`: switching tracing on for a firehose tap, and always back (leases).
- `manager`: one tap per watched vhost, started and stopped by its viewers.
- `viewer`: `join_tap` / `leave_tap`, and `ViewerStream` (filter, sample, count).
- `observe`: `wait_for_routed_queues`, what the firehose saw happen to one message.
- `groups`: the channel-layer names (`tap_group`) and the messages sent to them.
"""

from flows.tap.groups import tap_group

__all__ = ["tap_group"]
