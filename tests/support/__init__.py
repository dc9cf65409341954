"""What the tests share, imported by name (fixtures live in the conftest.py files).

`waiting` (the one `eventually`), `broker_admin` (what tests do to a broker that the dashboard
never does), `accounts` and `vhosts` (who connects, scratch vhost names), `topology_definitions`
(a topology declared in one call), `publishing` (the publishing tests' topology), `tap_events`
(events from the tap's own builders), `tap_harness` (a tap whose batches land in a list),
`communicators` and `tap_socket` (websockets in process and on a served dashboard),
`live_server` (daphne in a subprocess), `tap_process` (`manage.py tap` in a subprocess),
`tcp_proxy` (a broker that goes away), `own_broker` (RabbitMQ nodes and a cluster of the
tests' own, to stop, restart, kill and alarm), `browser`.
"""
