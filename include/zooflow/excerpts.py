"""Short, truncated excerpts of what zooflow read, for error messages.

An error that quotes a file's content (an unknown key, a bad cell, a list of missing files) must
stay readable, and small enough for a log line, an XCom or a terminal, whatever the file holds: a
crafted slice spec with a million keys, or a one-megabyte cell, would otherwise be printed whole.
Every message that embeds content goes through ``excerpt`` (text) or ``listing`` (several items).
"""

from __future__ import annotations

from collections.abc import Iterable

TEXT_LIMIT = 80  # characters of one quoted value
LIST_LIMIT = 5  # items of a list


def excerpt(text: object, limit: int = TEXT_LIMIT) -> str:
    """``text`` (or its ``str``) cut to ``limit`` characters, saying how many were left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def listing(items: Iterable[object], shown: int = LIST_LIMIT, *, separator: str = ", ", quote: bool = False) -> str:
    """The first ``shown`` items (each an excerpt; ``repr``-quoted when ``quote``), then "and N more"."""
    items = list(items)
    parts = [excerpt(repr(item) if quote else item) for item in items[:shown]]
    text = separator.join(parts)
    if len(items) > shown:
        text += f"{separator.rstrip()} and {len(items) - shown:,} more"
    return text
