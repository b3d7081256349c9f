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

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from functools import partial
from itertools import accumulate, compress

GAP = " "
MASK = "*"

# Characters that render as nothing but are letters or symbols by category, so a
# category test alone would keep them: Hangul fillers and the blank braille cell.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_DROPPED_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Cs", "Co", "Cn"})
# The memo of folded characters stops growing here; past it, characters are folded
# each time. Bounds what a sender of many distinct characters can make a node keep.
_MEMO_MAX = 65536
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


class _CharLayout:
    """Where each folded character came from and where tokens start, one entry per
    folded character: the general case, built by :meth:`Folder.fold_by_char`."""

    __slots__ = ("origin", "starts")

    def __init__(self, origin: tuple[int, ...], starts: bytes) -> None:
        self.origin = origin
        self.starts = starts

    def typed_index(self, k: int) -> int:
        return self.origin[k]

    def starts_token(self, k: int) -> bool:
        return bool(self.starts[k])

    def token_starts_inside(self, start: int, end: int) -> bool:
        return any(self.starts[start + 1 : end])


class _TokenLayout:
    """The same answers for text in which every character folds to one character or a
    gap (most ASCII text), kept per token: inside a token, folded and typed indexes
    move together, so a token's two start indexes place all its characters."""

    __slots__ = ("_folded", "_typed")

    def __init__(self, spaced: str) -> None:
        # Splitting at each gap gives the tokens and, as empty pieces, runs of gaps;
        # a piece begins one character after the end of the one before it.
        lengths = list(map(len, spaced.split(GAP)))
        piece_starts = accumulate(map((1).__add__, lengths), initial=0)
        self._typed = list(compress(piece_starts, lengths))
        # Ends with the length of the folded text, so that a search never runs off it.
        self._folded = list(accumulate(filter(None, lengths), initial=0))

    @property
    def starts(self) -> bytes:
        flags = bytearray(self._folded[-1])
        for k in self._folded[:-1]:
            flags[k] = 1
        return bytes(flags)

    def typed_index(self, k: int) -> int:
        token = bisect_right(self._folded, k) - 1
        return self._typed[token] + k - self._folded[token]

    def starts_token(self, k: int) -> bool:
        return self._folded[bisect_left(self._folded, k)] == k

    def token_starts_inside(self, start: int, end: int) -> bool:
        return self._folded[bisect_right(self._folded, start)] < end


class Folded:
    """A text folded for matching: ``text`` holds its word characters only.

    Where each folded character came from in ``source``, and where tokens start (after
    a gap, or at a character of an unspaced script), is worked out only when a match
    asks for it: most texts match nothing, and that bookkeeping costs more than the
    folding itself.
    """

    __slots__ = ("_layout", "_make_layout", "source", "text")

    def __init__(self, source: str, text: str,
                 make_layout: Callable[[], _CharLayout | _TokenLayout]) -> None:
        self.source = source
        self.text = text
        self._make_layout = make_layout
        self._layout: _CharLayout | _TokenLayout | None = None

    def _where(self) -> _CharLayout | _TokenLayout:
        if self._layout is None:
            self._layout = self._make_layout()
        return self._layout

    @property
    def starts(self) -> bytes:
        """1 for each folded character that starts a token, else 0."""
        return self._where().starts

    def whole_tokens(self, start: int, end: int) -> bool:
        """Whether the span [start, end) of ``text`` is a fair match (see the module doc)."""
        where = self._where()
        if not where.token_starts_inside(start, end):
            return True
        return where.starts_token(start) and (end == len(self.text) or where.starts_token(end))

    def typed_span(self, start: int, end: int) -> tuple[int, int]:
        """The typed characters [a, b) that the folded span [start, end) came from,
        with any marks that sit on the last of them."""
        where = self._where()
        a, b = where.typed_index(start), where.typed_index(end - 1) + 1
        while b < len(self.source) and unicodedata.category(self.source[b]) in ("Mn", "Me"):
            b += 1
        return a, b


class CharMemo(dict[int, str]):
    """What ``convert`` makes of each character, by code point, in the form
    str.translate reads: filled as characters are first met, and bounded (see
    _MEMO_MAX), so that a text is converted in C once its characters are known."""

    def __init__(self, convert: Callable[[str], str]) -> None:
        super().__init__()
        self._convert = convert

    def __missing__(self, code: int) -> str:
        converted = self._convert(chr(code))
        if len(self) < _MEMO_MAX:
            self[code] = converted
        return converted


class Folder:
    """Folds text with one look-alike table. Keeps a memo of the characters it has seen."""

    def __init__(self, lookalikes: Mapping[str, str] | None = None) -> None:
        self._table = dict(lookalikes or {})
        self._memo = CharMemo(self._fold_new)
        # With every ASCII character folding to one ASCII character or a gap, an ASCII
        # text maps back token by token (_TokenLayout); an app's table can break that.
        self._ascii_one_to_one = all(self._one_ascii(chr(code)) for code in range(128))

    def _one_ascii(self, ch: str) -> bool:
        folded = self.fold_char(ch)
        return len(folded) == 1 and folded.isascii()

    def fold_char(self, ch: str) -> str:
        """The word characters ``ch`` stands for, GAP for a separator, '' if invisible."""
        return self._memo[ord(ch)]

    def _fold_new(self, ch: str) -> str:
        if ch in _INVISIBLE:
            return ""
        folded = "".join(_classify(c) for c in self._mapped(base_fold(ch)))
        if GAP in folded and folded.strip(GAP) == "":
            return GAP
        return folded

    def _mapped(self, text: str) -> str:
        if not self._table:
            return text
        return "".join(self._table.get(c, c) for c in text)

    def fold(self, source: str) -> Folded:
        # str.translate runs the memo over the text in C, and the folded text is what
        # it gives without the gaps: the same as fold_by_char's, at a fraction of the
        # cost. The way back to the typed text waits until a match needs it.
        spaced = source.translate(self._memo)
        text = spaced.replace(GAP, "")
        if self._ascii_one_to_one and source.isascii():
            return Folded(source, text, partial(_TokenLayout, spaced))
        return Folded(source, text, partial(self._char_layout, source))

    def _char_layout(self, source: str) -> _CharLayout:
        _, origin, starts = self.fold_by_char(source)
        return _CharLayout(origin, starts)

    def fold_by_char(self, source: str) -> tuple[str, tuple[int, ...], bytes]:
        """What folding means, one typed character at a time: the folded text, the typed
        index each folded character came from, and 1 where a token starts. :meth:`fold`
        gives the same answers (tests/moderation/test_normalise.py holds it to that)."""
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
        return "".join(chars), tuple(origin), bytes(starts)

    def key(self, word: str) -> str:
        """A keyword as it is matched: folded, with its gaps taken out."""
        return self.fold(word).text


def mask(source: str, spans: list[tuple[int, int]], folder: Folder) -> str:
    """``source`` with every typed character in ``spans`` masked; invisible ones inside a
    span are removed, so the mask shows no trace of how the word was disguised."""
    if not spans:
        return source
    out = []
    done = 0
    for a, b in _merged(spans):
        out.append(source[done:a])
        out += [MASK for ch in source[a:b] if folder.fold_char(ch) != ""]
        done = b
    out.append(source[done:])
    return "".join(out)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The same characters as ``spans``, as spans in order that neither overlap nor meet."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(span for span in spans if span[0] < span[1]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
