"""The live page: watch messages flow and get consumed, in the browser.

Pure modules (no I/O) hold the logic and are tested with tables: `body` (decoding a body
preview for people), `rows` (an event as a feed row and as details), `counters` (counts that
add up, rates), `prediction` (the routing dry-run for bindings-mode events), `consumption`
(queue depth history and sparklines). `feed` renders what the live websocket
(`flows.websockets.live`) sends; the views live in `flows/views/live.py`.
"""
