"""The one way the dashboard talks to RabbitMQ.

- `management_api`: the HTTP management API client (reads topology, manages vhosts, tracing).
- `amqp`: the pika connection factory (publishing, tapping).
- `errors`: the typed errors both raise, each with a message fit to show a user.
- `redact`: credential masking for anything that is shown or logged.
"""
