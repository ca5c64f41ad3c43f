"""Text from elsewhere (a node's error detail or status strings), made safe to print."""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every character that is not printable (control characters such as ESC,
    CR and newline, bidirectional overrides, other format characters) written as its Python
    escape (`\\x1b`, `\\n`, `\\u202e`), so it can neither move the cursor, erase or recolour
    a line, nor start a line of its own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
