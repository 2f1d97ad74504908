"""How counts and values read in the one-line messages users get."""

from __future__ import annotations

from typing import Any


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    """`n` and the word, in the plural unless n is 1: "1 row", "2,000 rows"."""
    return f"{n:,} {word if n == 1 else (plural_word or word + 's')}"


def shown(value: Any, limit: int = 40) -> str:
    """A value as a message shows it: text quoted, anything cut to `limit` characters."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
