"""The words of a boolean, read the same wherever one is written (queries, settings, options)."""

from __future__ import annotations

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "on", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "off", "0"})


def parse_boolean(text: str) -> bool | None:
    """A boolean word (any case, spaces around ignored), or None if the text is not one."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
