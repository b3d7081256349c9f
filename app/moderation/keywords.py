"""An app's keywords as one Aho-Corasick automaton over folded text.

Every keyword is folded with the app's :class:`~app.moderation.normalise.Folder` and
added to a pyahocorasick automaton, so one pass over a message finds every keyword in
it, whether the list holds ten words or a hundred thousand. A raw hit is kept only
if it covers whole tokens (see :meth:`Folded.whole_tokens`).

The automaton is fed UTF-8 bytes, one character per byte, not the characters
themselves: pyahocorasick looks a node's children up one by one, and a Chinese list
gives the root thousands of children (one per first character), which made a check
cost grow with the list. As bytes, no node has more than 256 children. UTF-8 lets no
match begin or end inside a character, so a hit maps back by decoding its prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

from app.moderation.normalise import Folded, Folder
from app.moderation.rules import SEVERITY, Action, Hit


@dataclass(frozen=True, slots=True)
class KeywordRule:
    word: str
    category: str
    action: Action


def _as_bytes(text: str) -> str:
    """``text`` as its UTF-8 bytes, each byte one character (see the module doc)."""
    return text if text.isascii() else text.encode("utf-8").decode("latin-1")


class KeywordMatcher:
    def __init__(self, rules: Iterable[KeywordRule], folder: Folder) -> None:
        self._automaton = ahocorasick.Automaton()
        for rule in rules:
            key = folder.key(rule.word)
            if not key:
                continue
            held = self._automaton.get(_as_bytes(key), None)
            if held is None or SEVERITY[rule.action] > SEVERITY[held[1].action]:
                self._automaton.add_word(_as_bytes(key), (len(key), rule))
        self._size = len(self._automaton)
        if self._size:
            self._automaton.make_automaton()

    def __len__(self) -> int:
        return self._size

    def find(self, folded: Folded) -> list[Hit]:
        """Every keyword in the text, in the order they end."""
        if not self._size or not folded.text:
            return []
        text = folded.text
        raw = None if text.isascii() else text.encode("utf-8")
        hits = []
        for last, (length, rule) in self._automaton.iter(_as_bytes(text)):
            end = last + 1 if raw is None else len(raw[: last + 1].decode("utf-8"))
            start = end - length
            if folded.whole_tokens(start, end):
                a, b = folded.typed_span(start, end)
                hits.append(Hit("keyword", rule.action, rule.category, rule.word, a, b))
        return hits
