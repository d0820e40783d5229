"""Text normalisation for matching what people type on phones."""

from __future__ import annotations

import re
import unicodedata

# Zero-width characters, direction marks and the BOM survive NFKC and hide inside words.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
# Everything that is not a letter, digit, CJK ideograph or '#': punctuation, symbols, emoji, spaces.
_NOISE = re.compile(r"[^\w#]|_", re.UNICODE)


def clean(text: str) -> str:
    """NFKC (full-width to half-width), invisible characters removed, outer whitespace stripped.

    The invisible characters go first: one between a letter and a combining mark ("A\u200b\u0323") would
    otherwise keep them apart through NFKC and leave text that a second `clean` changes again."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text or "")).strip()


def squeeze(text: str) -> str:
    """`clean`, then drop spaces, punctuation, symbols and emoji; lower-case Latin letters."""
    return _NOISE.sub("", clean(text)).lower()
