"""Where a tapped publish went, when the broker does not say (bindings mode).

In bindings mode the tap sees a copy of the message but not the queues it reached: the
routing dry-run (`flows.routing_rules.prediction.predict`, which leaves the tap's own objects
out) over the vhost's topology predicts them, and the page labels the answer "predicted".
The topology comes from the async face of the runtime's `topology_cache`, so a burst
of events never turns into a burst of management-API calls, and the event loop never waits
on HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flows.routing_rules.prediction import Prediction, no_prediction, predict
from flows.topology.records import Topology


def predict_event(topology: Topology | None, event: Mapping[str, Any]) -> Prediction:
    """The dry-run's answer for a publish event (None: no topology read yet)."""
    exchange = str(event.get("exchange") or "")
    routing_key = str(event.get("routing_key") or "")
    headers = event.get("headers")
    headers = headers if isinstance(headers, Mapping) else {}
    if topology is None:
        return no_prediction(
            "topology not loaded yet: route unknown",
            vhost=str(event.get("vhost") or ""),
            exchange=exchange,
            routing_key=routing_key,
            headers=headers,
        )
    return predict(topology, exchange=exchange, routing_key=routing_key, headers=headers)
