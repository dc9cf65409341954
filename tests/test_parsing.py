"""The words for yes and no: one table for environment variables, filters and forms."""

from __future__ import annotations

import pytest

from flows.parsing import FALSE_WORDS, TRUE_WORDS, boolean_word


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("On", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("OFF", False),
        ("", None),
        ("  ", None),
        ("maybe", None),
        ("2", None),
        ("y", None),
    ],
)
def test_boolean_word(text: str, expected: bool | None) -> None:
    assert boolean_word(text) is expected


def test_no_word_means_both() -> None:
    assert not TRUE_WORDS & FALSE_WORDS
