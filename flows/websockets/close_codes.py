"""The close codes the websockets end a connection with (4000-4999 are the application's).

They mirror HTTP's 400, 401, 403 and 410. htmx's ws extension reconnects only after 1006, 1011,
1012 and 1013, so a socket closed with one of these stays closed, and the live page's script
(`static/flows/live.js`) shows why until the person does something about it. A handshake
refused before accepting would reach the browser as 1006 instead (and be retried forever), so
every refusal accepts first, says why in a frame, then closes. A foreign origin gets no frame
(nothing is said to another site's page), only its close code (`flows.websockets.origin`).
"""

from __future__ import annotations

CLOSE_BAD_REQUEST = 4400  # a query parameter cannot be used: the frame before names it
CLOSE_NOT_SIGNED_IN = 4401  # no signed-in session: sign in again
CLOSE_FORBIDDEN = 4403  # signed in, but not allowed: no role, another's vhost, the firehose
CLOSE_FOREIGN_ORIGIN = 4003  # the page's origin is not the dashboard's (DJANGO_ALLOWED_HOSTS)
CLOSE_LINK_ENDED = 4410  # an audience link that expired, was revoked or never existed
