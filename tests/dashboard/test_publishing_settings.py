"""Publishing's settings from the environment: a table of cases."""

import pytest

from dashboard import env


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 7), ("", 7), ("1", 1), ("1048576", 1048576), ("1_000", 1000), (" 42 ", 42)],
)
def test_parse_positive_int(raw, expected):
    assert env.parse_positive_int(raw, default=7) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "1MiB", "lots"])
def test_parse_positive_int_refuses_the_rest(raw):
    with pytest.raises(ValueError, match="positive whole number"):
        env.parse_positive_int(raw, default=7)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, []), ("", []), ("demo.*,test.*", ["demo.*", "test.*"]), (" demo.* , ", ["demo.*"])],
)
def test_publish_exchange_patterns(raw, expected):
    assert env.parse_list(raw, default=[]) == expected
