"""Reading one vhost's topology from the management API: six lists, fetched in parallel.

Most callers want the runtime's `topology_cache` (`flows.topology.cache`), which shares one
read between every page that asks within a few seconds; this is the read itself.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flows.broker.errors import BrokerAuthFailed, BrokerNotFound, BrokerRefused
from flows.broker.management_api import ManagementClient
from flows.runtime import runtime
from flows.topology.parsing import build_topology
from flows.topology.records import Topology

# Only the fields the dashboard shows: the management API then skips the rest of its
# per-object statistics, which is most of the cost on a large vhost.
EXCHANGE_COLUMNS = "name,type,durable,auto_delete,internal,arguments,policy"
QUEUE_COLUMNS = (
    "name,type,durable,auto_delete,exclusive,arguments,policy,effective_policy_definition,"
    "state,node,messages,messages_ready,messages_unacknowledged,consumers"
)
BINDING_COLUMNS = "source,destination,destination_type,routing_key,arguments,properties_key"


class UnknownVhost(BrokerNotFound):
    """The vhost does not exist (or the management user cannot see it)."""


def load_topology(vhost: str, *, client: ManagementClient | None = None) -> Topology:
    """Read the vhost's topology from the management API.

    Raises UnknownVhost when the vhost does not exist, and the client's BrokerError
    subclasses for an unreachable or refusing broker.
    """
    client = client or runtime().management_client

    def policies() -> list[dict[str, Any]] | None:
        try:
            return client.policies(vhost)
        except (BrokerAuthFailed, BrokerRefused):
            return None  # listing policies needs the policymaker tag

    def connections() -> list[dict[str, Any]]:
        try:
            return client.connections(vhost)
        except (BrokerAuthFailed, BrokerRefused):
            return []  # consumers then go by their tags

    reads: dict[str, Callable[[], Any]] = {
        "exchanges": lambda: client.exchanges(vhost, columns=EXCHANGE_COLUMNS, disable_stats=True),
        # Statistics stay on: the depth and consumer counts are what a person looks for.
        "queues": lambda: client.queues(vhost, columns=QUEUE_COLUMNS),
        "bindings": lambda: client.bindings(vhost, columns=BINDING_COLUMNS),
        "consumers": lambda: client.consumers(vhost),
        "policies": policies,
        # Only to name the consumers: a client's `connection_name` is on its connection.
        "connections": connections,
    }
    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="topology") as pool:
        futures = {name: pool.submit(read) for name, read in reads.items()}
        try:
            results = {name: future.result() for name, future in futures.items()}
        except BrokerNotFound as exc:
            raise UnknownVhost(f"No vhost named {vhost!r} on the broker") from exc
    return build_topology(vhost, **results)


__all__ = ["UnknownVhost", "load_topology"]
