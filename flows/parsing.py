"""Words people type for yes and no, shared by every parser of a boolean they write.

Environment variables (`dashboard.env`), query parameters (`flows.tap.filters`) and form
fields all accept the same words, so `DJANGO_DEBUG=on`, `?unroutable=yes` and a checkbox's
`true` mean what they say everywhere. Pure: no Django import, so settings can use it.
"""

from __future__ import annotations

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def boolean_word(text: str) -> bool | None:
    """True or False for one of the words above (any case, spaces around), else None.

    An empty text is None too: whether "nothing typed" means false or a default is the
    caller's to say.
    """
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
