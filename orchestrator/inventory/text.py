"""How values are trimmed, recognised as secrets, and shown in messages.

Every message and every skipped row goes through `show` / `safe`, so a client secret pasted into a wrong cell
never reaches a report, a log or an exception.
"""

from __future__ import annotations

import re
from typing import Final

#: Every character str.isspace() knows, plus the invisible ones copy-paste brings (zero-width, marks, BOM).
STRIP: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u200e\u200f\ufeff"
)
_GUID_CORE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: A GUID, bare (group 2) or in braces (group 1).
GUID: Final = re.compile(rf"\{{({_GUID_CORE})\}}|({_GUID_CORE})")
GUID_EXAMPLE: Final = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
HIDDEN: Final = "(hidden: looks like a secret)"
#: Bidirectional controls: embeddings/overrides, isolates and marks. In a name they can make a report show text
#: in another order than it has ("Trojan Source"), so such a value is flagged, and shown escaped.
BIDI: Final = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_SECRET_CHARS = re.compile(r"[A-Za-z0-9+/=._~-]+")
_HEXISH = re.compile(r"[0-9a-fA-F{}-]+")
_UPPER, _LOWER, _DIGIT = re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9]")


def clean(value: str) -> str:
    """Trim what spreadsheets and copy-paste leave around a value (spaces, NBSP, zero-width, BOM)."""
    return value.strip(STRIP)


def looks_secret(value: str) -> bool:
    """True for text shaped like a client secret, a token or a key: such values are never echoed."""
    if value.startswith("-----BEGIN") or value.startswith("eyJ"):
        return True
    if len(value) >= 16 and "~" in value:  # Entra client secrets carry "~" (e.g. "abc8Q~…")
        return True
    if len(value) < 24 or not _SECRET_CHARS.fullmatch(value) or _HEXISH.fullmatch(value):
        return False
    if any(c in value for c in "+/="):
        return True
    return bool(_UPPER.search(value) and _LOWER.search(value) and _DIGIT.search(value))


def show(value: str) -> str:
    """A value as it may appear in a message: quoted, shortened, and hidden when it looks like a secret."""
    if looks_secret(value):
        return HIDDEN
    if len(value) > 60:
        value = value[:57] + "…"
    return repr(value)


def safe(value: str) -> str:
    """A value as it may be kept in a SkippedRow (which reaches the report): no secrets, no megabytes."""
    if looks_secret(value):
        return HIDDEN
    return value if len(value) <= 200 else value[:199] + "…"
