"""Folding text into the one form keywords are matched in, and mapping matches back.

People dodge a word list by typing the same word differently: full-width or
mathematical bold letters, other cases, accents, zero-width characters, spaces or dots
between the letters (``s.e.x``), or look-alike letters from another script (a Cyrillic
IE for a Latin e). :class:`Folder` turns each typed character into what it stands for:

    NFKC → drop combining marks → case fold → look-alike table → classify

and classifies the result: a *word* character (a letter or a digit) is kept, an
*invisible* one (format characters, marks, fillers) vanishes, and anything else
(spaces, punctuation, symbols, emoji) is a *gap*. The folded text holds only word
characters, each remembering the index of the typed character it came from, so a
match found in it can be masked in what the user actually typed.

Gaps are dropped so that ``s e x`` folds to ``sex``, but they are remembered as token
boundaries: a match that runs across a gap must cover whole tokens, which finds
``s e x`` and ``fu ck`` but not ``sex`` in ``is exactly``. Scripts written without
spaces (Chinese, Japanese, Korean, Thai...) make every character its own token, so a
Chinese word is found wherever it stands, with or without characters put between.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

GAP = " "
MASK = "*"

# Characters that render as nothing but are letters or symbols by category, so a
# category test alone would keep them: Hangul fillers and the blank braille cell.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_DROPPED_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Cs", "Co", "Cn"})
# The memo of folded characters stops growing here; past it, characters are folded
# each time. Bounds what a sender of many distinct characters can make a node keep.
_MEMO_MAX = 65536
_TOKEN = re.compile(r"[^ ]+")
_FIRST_UNSPACED = "\u0e00"  # no script below this code point is written without spaces


def is_unspaced(ch: str) -> bool:
    """Whether ``ch`` belongs to a script written without spaces between words."""
    cp = ord(ch)
    return (
        0x2E80 <= cp <= 0x9FFF  # CJK radicals and symbols, kana, Bopomofo, Han
        or 0xAC00 <= cp <= 0xD7AF  # Hangul syllables
        or 0xF900 <= cp <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= cp <= 0x3FFFF  # Han extensions B and later
        or 0x0E00 <= cp <= 0x0EFF  # Thai, Lao
        or 0x1000 <= cp <= 0x109F  # Myanmar
        or 0x1780 <= cp <= 0x17FF  # Khmer
    )


def _classify(ch: str) -> str:
    """A folded character as matching sees it: itself, GAP, or nothing."""
    if ch in _INVISIBLE:
        return ""
    category = unicodedata.category(ch)
    if category[0] in "LN":
        return ch
    if category in _DROPPED_CATEGORIES:
        return ""
    return GAP


def _strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) not in ("Mn", "Me"))
    return unicodedata.normalize("NFC", kept)


def base_fold(ch: str) -> str:
    """NFKC, without combining marks, case folded: the form before the look-alike table."""
    return _strip_marks(unicodedata.normalize("NFKC", ch)).casefold()


@dataclass(frozen=True, slots=True)
class Folded:
    """A text folded for matching.

    ``text[i]`` came from the typed character ``source[origin[i]]``; ``starts[i]`` is 1
    where a token starts (after a gap, or at a character of an unspaced script).
    """

    source: str
    text: str
    origin: tuple[int, ...]
    starts: bytes

    def whole_tokens(self, start: int, end: int) -> bool:
        """Whether the span [start, end) of ``text`` is a fair match (see the module doc)."""
        if not any(self.starts[start + 1 : end]):
            return True
        return bool(self.starts[start]) and (end == len(self.text) or bool(self.starts[end]))

    def typed_span(self, start: int, end: int) -> tuple[int, int]:
        """The typed characters [a, b) that the folded span [start, end) came from,
        with any marks that sit on the last of them."""
        a, b = self.origin[start], self.origin[end - 1] + 1
        while b < len(self.source) and unicodedata.category(self.source[b]) in ("Mn", "Me"):
            b += 1
        return a, b


class Folder:
    """Folds text with one look-alike table. Keeps a memo of the characters it has seen."""

    def __init__(self, lookalikes: Mapping[str, str] | None = None) -> None:
        self._table = dict(lookalikes or {})
        self._memo: dict[str, str] = {}
        self._ascii = self._ascii_table()

    def _ascii_table(self) -> dict[int, str] | None:
        """When every ASCII character folds to one character or a gap, ASCII text can be
        folded with str.translate, every folded character at its typed index."""
        table = {}
        for code in range(128):
            folded = self.fold_char(chr(code))
            if len(folded) != 1:
                return None
            table[code] = folded
        return table

    def fold_char(self, ch: str) -> str:
        """The word characters ``ch`` stands for, GAP for a separator, '' if invisible."""
        done = self._memo.get(ch)
        if done is not None:
            return done
        out = [] if ch in _INVISIBLE else [
            _classify(c) for c in self._mapped(base_fold(ch))
        ]
        folded = "".join(out)
        if GAP in folded and folded.strip(GAP) == "":
            folded = GAP
        if len(self._memo) < _MEMO_MAX:
            self._memo[ch] = folded
        return folded

    def _mapped(self, text: str) -> str:
        if not self._table:
            return text
        return "".join(self._table.get(c, c) for c in text)

    def fold(self, source: str) -> Folded:
        if self._ascii is not None and source.isascii():
            return self._fold_ascii(source, self._ascii)
        chars: list[str] = []
        origin: list[int] = []
        starts = bytearray()
        gap = True
        previous_unspaced = False
        for i, typed in enumerate(source):
            for ch in self.fold_char(typed):
                if ch == GAP:
                    gap = True
                    continue
                unspaced = ch >= _FIRST_UNSPACED and is_unspaced(ch)
                starts.append(1 if gap or unspaced or previous_unspaced else 0)
                chars.append(ch)
                origin.append(i)
                gap, previous_unspaced = False, unspaced
        return Folded(source, "".join(chars), tuple(origin), bytes(starts))

    @staticmethod
    def _fold_ascii(source: str, table: dict[int, str]) -> Folded:
        """The same result as the loop in fold, a token at a time rather than a character."""
        spaced = source.translate(table)
        chars: list[str] = []
        origin: list[int] = []
        starts = bytearray()
        for token in _TOKEN.finditer(spaced):
            a, b = token.span()
            chars.append(token.group())
            origin.extend(range(a, b))
            starts.append(1)
            starts.extend(bytes(b - a - 1))
        return Folded(source, "".join(chars), tuple(origin), bytes(starts))

    def key(self, word: str) -> str:
        """A keyword as it is matched: folded, with its gaps taken out."""
        return self.fold(word).text


def mask(source: str, spans: list[tuple[int, int]], folder: Folder) -> str:
    """``source`` with every typed character in ``spans`` masked; invisible ones inside a
    span are removed, so the mask shows no trace of how the word was disguised."""
    if not spans:
        return source
    covered = bytearray(len(source))
    for a, b in spans:
        covered[a:b] = b"\x01" * (b - a)
    out = []
    for i, ch in enumerate(source):
        if not covered[i]:
            out.append(ch)
        elif folder.fold_char(ch) != "":
            out.append(MASK)
    return "".join(out)
