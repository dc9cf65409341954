"""`/ws/live/?audience=<token>`: an audience link instead of a session, bound to its vhost, and
closed with 4410 when the link ends (revoked while open, or expired), on the real broker."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from flows import audience
from flows.models import AudienceLink
from flows.websockets.close_codes import (
    CLOSE_FORBIDDEN,
    CLOSE_LINK_ENDED,
    CLOSE_NOT_SIGNED_IN,
)
from tests.support.communicators import connect, frames_until, run_with_tap
from tests.support.tap_harness import amqp_channel


@pytest.fixture
def link(transactional_db, link_maker, loaded_topics) -> audience.CreatedLink:
    return audience.create_link(link_maker, scenario="topics", vhost=loaded_topics)


def live_path(**params: str) -> str:
    return f"/ws/live/?{urlencode(params)}"


async def close_code(communicator, timeout: float = 30.0) -> int:
    """The code the socket is closed with, past whatever frames come first."""
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output["code"]


def refused(path: str, user, *, code: int, says: str) -> None:
    async def run():
        communicator = connect(path, user)
        connected, _ = await communicator.connect()
        assert connected  # accepted only to say why
        frame = await communicator.receive_from(timeout=10)
        assert 'id="live-tap-status"' in frame and says in frame, frame
        assert await close_code(communicator) == code

    run_with_tap(run)


def test_the_token_watches_the_links_vhost_without_an_account(link, loaded_topics):
    async def run():
        communicator = connect(live_path(audience=link.token), AnonymousUser())
        connected, _ = await communicator.connect()
        assert connected
        await frames_until(communicator, lambda f: "tap: running" in f)

        def publish():
            with amqp_channel(loaded_topics) as channel:
                channel.basic_publish("food", "food.pizza", b'{"slice": 1}')

        await asyncio.to_thread(publish)
        frame = (await frames_until(communicator, lambda f: "food.pizza" in f))[-1]
        assert "live-row" in frame
        await communicator.disconnect()

    run_with_tap(run)


def test_another_vhost_is_refused(link, loaded_topics):
    refused(
        live_path(vhost="/", audience=link.token),
        AnonymousUser(),
        code=CLOSE_FORBIDDEN,
        says=f"shows vhost &#x27;{loaded_topics}&#x27; only",
    )


def test_the_token_binds_a_signed_in_user_too(link, link_maker):
    refused(
        live_path(vhost="flows-test-elsewhere", audience=link.token),
        link_maker,
        code=CLOSE_FORBIDDEN,
        says="only",
    )


@pytest.mark.parametrize("token", ["", "not-a-token"])
def test_an_unknown_token_is_refused(transactional_db, token):
    refused(
        live_path(audience=token),
        AnonymousUser(),
        code=CLOSE_LINK_ENDED,
        says="This audience link is not valid",
    )


@pytest.mark.parametrize(
    ("field", "says"), [("expires_at", "has expired"), ("revoked_at", "was revoked")]
)
def test_a_link_that_ended_is_refused_on_connect(link, field, says):
    AudienceLink.objects.filter(pk=link.link.pk).update(**{field: timezone.now()})
    refused(live_path(audience=link.token), AnonymousUser(), code=CLOSE_LINK_ENDED, says=says)


def test_the_audience_never_switches_tracing_on(link, django_user_model):
    # Even a link made by a superuser: tracing costs the whole vhost, the audience never chooses.
    link.link.created_by.is_superuser = True
    link.link.created_by.save()
    refused(
        live_path(mode="firehose", audience=link.token),
        AnonymousUser(),
        code=CLOSE_FORBIDDEN,
        says="firehose",
    )


def test_revoking_closes_the_open_sockets_of_that_link_only(link, link_maker, loaded_topics):
    other = audience.create_link(link_maker, scenario="topics", vhost=loaded_topics)

    async def run():
        revoked_socket = connect(live_path(audience=link.token), AnonymousUser())
        kept_socket = connect(live_path(audience=other.token), AnonymousUser())
        for communicator in (revoked_socket, kept_socket):
            assert (await communicator.connect())[0]
            await frames_until(communicator, lambda f: "tap: running" in f)

        await database_sync_to_async(audience.revoke_link)(
            link_maker, link_id=link.link.pk, scenario="topics", vhost=loaded_topics
        )
        frames = await frames_until(revoked_socket, lambda f: "was revoked" in f)
        assert 'id="live-tap-status"' in frames[-1]
        assert await close_code(revoked_socket) == CLOSE_LINK_ENDED

        # The other link's socket still watches: a message published after the revoke arrives.
        def publish():
            with amqp_channel(loaded_topics) as channel:
                channel.basic_publish("food", "food.pizza", b'{"after": "the revoke"}')

        await asyncio.to_thread(publish)
        await frames_until(kept_socket, lambda f: "food.pizza" in f and "live-row" in f)
        await kept_socket.disconnect()

    run_with_tap(run)


def test_a_socket_is_closed_when_its_link_expires(link):
    AudienceLink.objects.filter(pk=link.link.pk).update(
        expires_at=timezone.now() + timedelta(seconds=2)
    )

    async def run():
        communicator = connect(live_path(audience=link.token), AnonymousUser())
        assert (await communicator.connect())[0]
        await frames_until(communicator, lambda f: "has expired" in f)
        assert await close_code(communicator) == CLOSE_LINK_ENDED

    run_with_tap(run)


def test_the_json_tap_socket_takes_no_audience_token(link, loaded_topics):
    async def run():
        path = f"/ws/tap/?{urlencode({'vhost': loaded_topics, 'audience': link.token})}"
        communicator = connect(path, AnonymousUser())
        await communicator.connect()
        assert "Sign in to watch messages." in await communicator.receive_from(timeout=10)
        assert await close_code(communicator) == CLOSE_NOT_SIGNED_IN

    run_with_tap(run)
