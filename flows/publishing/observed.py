"""The seam to the tap: which queues the firehose saw a published message routed to.

The tap (flows/tap/) matches firehose `publish.*` events to a message id; until it is
wired in, nothing is observed and results show the dry-run's prediction only.
"""

from __future__ import annotations


def observed_routed_queues(vhost: str, message_id: str) -> list[str] | None:
    """The queues the broker routed `message_id` to, as the firehose reported them.

    None means "not observed" (the firehose is off, or the tap has not seen it yet);
    an empty list would mean the firehose saw the publish routed to no queue.
    """
    return None
