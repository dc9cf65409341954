import pytest

from flows.broker.redact import host_and_port, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("amqp://ops:s%40cret@rabbit/%2F", "amqp://ops:***@rabbit/%2F"),
        ("http://127.0.0.1:15672/", "http://127.0.0.1:15672/"),
        ("amqps://u:p@[::1]:5671/vh?heartbeat=5", "amqps://u:***@[::1]:5671/vh?heartbeat=5"),
        ("amqp://user@host/", "amqp://user@host/"),
        ("amqp://:pw@host/", "amqp://:***@host/"),
    ],
)
def test_mask_url_hides_passwords(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("url", "default_port", "expected"),
    [
        ("http://guest:secret@127.0.0.1:15672/", 15672, "127.0.0.1:15672"),
        ("http://rabbit.example/", 15672, "rabbit.example:15672"),
        ("amqp://u:p@[::1]/", 5672, "[::1]:5672"),
    ],
)
def test_host_and_port_never_names_credentials(url, default_port, expected):
    assert host_and_port(url, default_port=default_port) == expected
