"""What tests read off a rendered live view (the live page, a scenario page)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def ws_query(html: str) -> dict[str, list[str]]:
    """The query of the `/ws/live/` socket the page connects to."""
    start = html.index('ws-connect="') + len('ws-connect="')
    path = html[start : html.index('"', start)].replace("&amp;", "&")
    assert urlsplit(path).path == "/ws/live/"
    return parse_qs(urlsplit(path).query)
