"""The seam to the tap: which queues the firehose saw a published message routed to.

When a firehose tap for the vhost runs in this process (someone watches the vhost live with
the firehose on), its publish events carry the broker's own `routed_queues`; the publish
result shows those as "observed". Otherwise (no firehose, or the tap runs as its own process
behind Redis) nothing is observed and the result shows the dry-run's prediction only.
"""

from __future__ import annotations

from flows.runtime import runtime

# The firehose reports a publish within milliseconds on loopback; a person waits at most this
# long for "observed" before the prediction stands alone.
OBSERVE_TIMEOUT_S = 1.0


def observed_routed_queues(
    vhost: str, message_id: str, *, published_after: float | None = None
) -> list[str] | None:
    """The queues the broker routed `message_id` to, as the firehose reported them.

    None means "not observed" (the firehose is off, or the tap did not see it in time);
    an empty list means the firehose saw the publish routed to no queue.
    `published_after` is a `time.monotonic()` reading taken before publishing, so an older
    message with the same id is not mistaken for this one.
    """
    return runtime().firehose_observations.wait_for_routed_queues(
        vhost, message_id, OBSERVE_TIMEOUT_S, seen_after=published_after
    )
