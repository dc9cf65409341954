"""The one way the dashboard talks to RabbitMQ: nothing outside this package builds a
management-API path or opens a connection of its own.

- `management_api`: the HTTP management API client (lists a vhost's objects, page by page;
  reads vhosts and queues; switches tracing).
- `amqp`: the pika connection factory (publishing, tapping).
- `errors`: the typed errors both raise, each with a message fit to show a user.
- `naming`: the names of the objects the dashboard itself declares (tap queues...).
- `redact`: credential masking for anything that is shown or logged.
"""
