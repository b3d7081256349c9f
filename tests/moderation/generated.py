"""Texts made at random from pieces chosen to reach every branch of the matchers, so that
a fast path can be held to the same answers as the plain one over thousands of cases."""

from __future__ import annotations

import random
import string

# Folding: each kind of character the folder treats on its own, and ASCII in bulk.
FOLD_PIECES = [
    *string.ascii_letters, *string.digits, *string.punctuation, " ", "  ", "\n", "\t",
    "\x00", "\x7f", "sex", "kill you", "paypal", "s.e.x", "ss",
    "\N{FULLWIDTH LATIN CAPITAL LETTER S}", "\N{MATHEMATICAL BOLD SMALL E}",
    "\N{CIRCLED LATIN SMALL LETTER X}", "\N{LATIN SMALL LIGATURE FI}",
    "\N{LATIN SMALL LETTER SHARP S}", "\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}",
    "\N{KELVIN SIGN}", "\N{LATIN CAPITAL LETTER D WITH SMALL LETTER Z WITH CARON}",
    "\N{VULGAR FRACTION ONE HALF}", "\N{CIRCLED DIGIT ONE}",
    "\N{COMBINING ACUTE ACCENT}", "\N{COMBINING ENCLOSING CIRCLE}",
    "\N{ZERO WIDTH SPACE}", "\N{ZERO WIDTH JOINER}", "\N{SOFT HYPHEN}",
    "\N{VARIATION SELECTOR-16}", "\N{HANGUL FILLER}", "\N{BRAILLE PATTERN BLANK}",
    "\N{TAG LATIN SMALL LETTER A}", "\ud800", "\ue000",
    "\N{CYRILLIC SMALL LETTER ER}", "\N{CYRILLIC CAPITAL LETTER A}",
    "\N{GREEK SMALL LETTER ALPHA}", "\N{LATIN LETTER SMALL CAPITAL S}",
    "\u6cd5", "\u8f6e", "\u529f", "\u6211", "\u4fe1", "\N{IDEOGRAPHIC FULL STOP}",
    "\N{IDEOGRAPHIC SPACE}", "\N{FULLWIDTH FULL STOP}", "\u0e01", "\ud55c", "\u30ab",
    "\N{GRINNING FACE}", "\N{BLACK HEART SUIT}", "\u00a0",
]

# Links: the parts links are written with, and the text around them.
LINK_PIECES = [
    "http://", "https://", "HTTP://", "ftp://", "a+b.c-d://", "://", ":/", "//", "www.",
    "evil", "Evil", "shop", "docs", "x", "a", "com", ".com", ".org", ".cn", ".txt", ".zip",
    ".py", ".", "..", "-", "_", "@", "user:pw@", ":8080", ":65535", ":99999", ":", "/",
    "/path", "?q=1", "#frag", "\\", "[::1]", "[2001:db8::1]", "[", "]", "1.2.3.4",
    "10.0.0.1", "0x7f.1", "2130706433", "3.14", "v1.2", "%2E", "%65", "%", " ", " ", " ",
    "\n", "\t", ",", ";", "!", "?", "(", ")", "<", ">", "'", '"', "`", "e.g.", "hello",
    "\u4f8b\u5b50", "\u4e2d\u56fd", "\u8bbf\u95ee", "\N{IDEOGRAPHIC FULL STOP}",
    "\N{FULLWIDTH FULL STOP}", "\N{HALFWIDTH IDEOGRAPHIC FULL STOP}",
    "\N{FULLWIDTH LATIN SMALL LETTER E}", "\N{ZERO WIDTH SPACE}", "\N{IDEOGRAPHIC SPACE}",
    "\N{CYRILLIC SMALL LETTER A}", "xn--fiqs8s", "\N{LATIN CAPITAL LETTER I WITH DOT ABOVE}",
    # Top-level domains written in their scripts, and characters near the Han fast paths.
    "\u4e2d\u570b", "\u516c\u53f8", "\u4e2d\u6587\u7f51", "\ud55c\uad6d", "\u0440\u0444",
    "\u0420\u0424", "\uf900", "\u3400", "\u9fa6", "\u9fff", "\u4e00", "\u6211\u5f88\u597d",
]


def texts(pieces: list[str], count: int, seed: int, ascii_only: bool = False,
          longest: int = 40) -> list[str]:
    """``count`` texts of up to ``longest`` pieces each, the same for the same seed."""
    rng = random.Random(seed)
    usable = [p for p in pieces if p.isascii()] if ascii_only else pieces
    return ["".join(rng.choices(usable, k=rng.randint(0, longest))) for _ in range(count)]
