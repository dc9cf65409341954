"""`manage.py record`: records a vhost in this process until its time is up."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from flows.models import Recording
from tests.support.tap_harness import amqp_channel


def test_record_until_the_time_is_up(transactional_db, scratch_vhost, fresh_runtime, settings):
    settings.FLOWS_TAP_STOP_DELAY = 0.1
    with amqp_channel(scratch_vhost) as channel:
        channel.exchange_declare("events", "topic")
    call_command("record", "--vhost", scratch_vhost, "--hours", str(2 / 3600), "--max-mb", "1")
    recording = Recording.objects.get(vhost=scratch_vhost)
    assert (recording.state, recording.mode) == (Recording.EXPIRED, "bindings")
    assert recording.max_bytes == 1024**2


def test_bad_bounds_name_the_option(db):
    with pytest.raises(CommandError, match="--max-mb"):
        call_command("record", "--vhost", "v", "--max-mb", "lots")
