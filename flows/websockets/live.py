"""`/ws/live/?vhost=<v>&mode=<mode>&<filter params>`: the live page's websocket.

It joins the vhost's tap and answers each tap batch with one frame of HTML fragments for
htmx's ws extension (`flows.live.feed` renders them). Refusals are fragments too: a bad
filter is shown next to its field, a refused tap, a missing sign-in or an audience link that
no longer works in the tap's status.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from flows.live.feed import LiveFeed
from flows.tap.groups import TapBatchMessage, TapStatusMessage
from flows.websockets.close_codes import CLOSE_BAD_REQUEST
from flows.websockets.viewer import Refusal, TapViewerConsumer


class LiveConsumer(TapViewerConsumer):
    feed: LiveFeed | None = None
    # The audience page (`/watch/<token>/`) watches through this socket too.
    accepts_audience_links = True

    def refusal_frame(self, refusal: Refusal) -> str:
        if refusal.code == CLOSE_BAD_REQUEST:
            return render_to_string("flows/live/_filter_error.html", {"error": refusal})
        return render_to_string(
            "flows/live/_tap_status.html",
            {"status": {"state": "error", "error": refusal.message}, "oob": True},
        )

    async def joined(self) -> None:
        assert self.stream is not None
        self.feed = LiveFeed(self.vhost, self.stream)
        await self.feed.warm()

    async def batch_frame(self, message: TapBatchMessage) -> str | None:
        return None if self.feed is None else await self.feed.batch_frame(message)

    def status_frame(self, message: TapStatusMessage) -> str | None:
        return None if self.feed is None else self.feed.update_frame(message.get("status"), [])
