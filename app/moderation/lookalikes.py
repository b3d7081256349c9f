"""The look-alike table every app starts with, and the check for an app's own entries.

Keys and values are in folded form (NFKC, no marks, case folded), because the table
is applied after those steps: an upper-case Cyrillic VE has become a small one by then.
An app may add or override entries, or turn this table off, through its settings.
Characters are named rather than written, since the point of them is that they cannot
be told apart on screen.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from app.errors import InvalidRequest
from app.moderation.normalise import base_fold

# Letters of other scripts drawn like Latin ones, and Latin shapes NFKC leaves alone
# (small capitals): the usual way to write a listed word so that it looks the same
# and matches nothing.
_DRAWN_LIKE: dict[str, tuple[str, ...]] = {
    "a": ("CYRILLIC SMALL LETTER A", "GREEK SMALL LETTER ALPHA", "LATIN SMALL LETTER ALPHA",
          "LATIN LETTER SMALL CAPITAL A"),
    "b": ("CYRILLIC SMALL LETTER VE", "CYRILLIC SMALL LETTER SOFT SIGN",
          "GREEK SMALL LETTER BETA", "LATIN LETTER SMALL CAPITAL B"),
    "c": ("CYRILLIC SMALL LETTER ES", "LATIN LETTER SMALL CAPITAL C"),
    "d": ("CYRILLIC SMALL LETTER KOMI DE", "LATIN LETTER SMALL CAPITAL D"),
    "e": ("CYRILLIC SMALL LETTER IE", "GREEK SMALL LETTER EPSILON",
          "LATIN LETTER SMALL CAPITAL E"),
    "g": ("LATIN SMALL LETTER SCRIPT G", "LATIN LETTER SMALL CAPITAL G"),
    "h": ("CYRILLIC SMALL LETTER EN", "CYRILLIC SMALL LETTER SHHA",
          "LATIN LETTER SMALL CAPITAL H"),
    "i": ("CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I", "GREEK SMALL LETTER IOTA",
          "LATIN SMALL LETTER DOTLESS I", "LATIN SMALL LETTER IOTA",
          "LATIN LETTER SMALL CAPITAL I"),
    "j": ("CYRILLIC SMALL LETTER JE", "LATIN SMALL LETTER DOTLESS J",
          "LATIN LETTER SMALL CAPITAL J"),
    "k": ("CYRILLIC SMALL LETTER KA", "GREEK SMALL LETTER KAPPA",
          "LATIN LETTER SMALL CAPITAL K"),
    "l": ("CYRILLIC SMALL LETTER PALOCHKA", "LATIN LETTER SMALL CAPITAL L"),
    "m": ("CYRILLIC SMALL LETTER EM", "LATIN LETTER SMALL CAPITAL M"),
    "n": ("CYRILLIC SMALL LETTER PE", "GREEK SMALL LETTER ETA", "LATIN LETTER SMALL CAPITAL N"),
    "o": ("CYRILLIC SMALL LETTER O", "GREEK SMALL LETTER OMICRON",
          "LATIN LETTER SMALL CAPITAL O"),
    "p": ("CYRILLIC SMALL LETTER ER", "GREEK SMALL LETTER RHO", "LATIN LETTER SMALL CAPITAL P"),
    "q": ("CYRILLIC SMALL LETTER QA",),
    "r": ("CYRILLIC SMALL LETTER GHE", "LATIN LETTER SMALL CAPITAL R"),
    "s": ("CYRILLIC SMALL LETTER DZE", "LATIN LETTER SMALL CAPITAL S"),
    "t": ("CYRILLIC SMALL LETTER TE", "GREEK SMALL LETTER TAU", "LATIN LETTER SMALL CAPITAL T"),
    "u": ("GREEK SMALL LETTER UPSILON", "GREEK SMALL LETTER MU", "LATIN LETTER SMALL CAPITAL U"),
    "v": ("GREEK SMALL LETTER NU", "LATIN LETTER SMALL CAPITAL V"),
    "w": ("CYRILLIC SMALL LETTER WE", "GREEK SMALL LETTER OMEGA",
          "LATIN LETTER SMALL CAPITAL W"),
    "x": ("CYRILLIC SMALL LETTER HA", "GREEK SMALL LETTER CHI"),
    "y": ("CYRILLIC SMALL LETTER U", "LATIN LETTER SMALL CAPITAL Y"),
    "z": ("GREEK SMALL LETTER ZETA", "LATIN LETTER SMALL CAPITAL Z"),
}
# Digits and signs written for letters. Only the common ones: "1" could stand for "i"
# or "l", and is taken as "i".
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}

DEFAULT: dict[str, str] = {
    **{unicodedata.lookup(name): letter
       for letter, names in _DRAWN_LIKE.items() for name in names},
    **_LEET,
}

ENTRY_MAX = 8  # characters one replacement may have


def checked(entries: Mapping[str, str]) -> dict[str, str]:
    """An app's own entries in folded form; each key must fold to one character."""
    own: dict[str, str] = {}
    for key, value in entries.items():
        folded_key = base_fold(key) if isinstance(key, str) and len(key) == 1 else ""
        if len(folded_key) != 1 or not isinstance(value, str) or len(value) > ENTRY_MAX:
            raise InvalidRequest(
                f"Each look-alike maps one character to at most {ENTRY_MAX} characters.",
                code="invalid_lookalike",
            )
        own[folded_key] = "".join(base_fold(c) for c in value)
    return own


def table(own: Mapping[str, str], use_default: bool) -> dict[str, str]:
    """The table an app's text is folded with: the default, then the app's entries."""
    merged = dict(DEFAULT) if use_default else {}
    merged.update(checked(own))
    return merged
