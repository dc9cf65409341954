"""What a vhost holds, as the dashboard sees it.

- `records`: the frozen records (exchanges, queues, bindings, consumers, policies, Topology).
- `parsing`: the management API's JSON into records, tolerant of every version's shapes.
- `reading`: reading one vhost through the management-API client (`load_topology`).
- `cache`: the one snapshot cache every page reads through (the runtime's `topology_cache`),
  with a sync face for views and threads and an async face for the event loop.
- `shapes`: the JSON shape of `/api/topology`.
"""
