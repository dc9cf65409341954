"""Where the websockets are: every `/ws/...` URL and the consumer behind it.

- `urls`: the websocket URL table (`dashboard/asgi.py` mounts it).
- `viewer`: what both tap websockets share: the sign-in rule, joining and leaving the
  vhost's tap, filtering and sampling through a `ViewerStream`, refusals.
- `tap_json`: `/ws/tap/`, the tap's events as JSON, for programs.
- `live`: `/ws/live/`, the live page's HTML fragments for htmx's ws extension.
- `query`: the query string both read (vhost, mode, filters).
- `close_codes`: 4400, 4401, 4403, 4410, and what each means to the page.

Consumers stay thin: the tap lives in `flows.tap`, the live page's rendering in `flows.live`.
"""
