"""The keyword matcher: every evasion kind is found, masks land on the typed text, and
unrelated text is left alone."""

from __future__ import annotations

import unicodedata

import pytest

from app.moderation import lookalikes
from app.moderation.keywords import KeywordMatcher, KeywordRule
from app.moderation.normalise import Folder, mask
from app.moderation.rules import SEVERITY, Action, Hit
from tests.moderation import generated

FOLDER = Folder(lookalikes.DEFAULT)
FALUN = "\u6cd5\u8f6e\u529f"  # a Chinese keyword, three characters
WEIXIN_V = "v\u4fe1"  # a mixed keyword: Latin v and a Chinese character
RULES = [
    KeywordRule("sex", "porn", "mask"),
    KeywordRule("paypal", "fraud", "review"),
    KeywordRule(FALUN, "politics", "block"),
    KeywordRule(WEIXIN_V, "ads", "review"),
    KeywordRule("kill you", "threat", "block"),
]
MATCHER = KeywordMatcher(RULES, FOLDER)


def _found(text: str) -> list[tuple[str, str]]:
    """(keyword, the typed text it matched) for each hit."""
    return [(h.rule, text[h.start : h.end]) for h in MATCHER.find(FOLDER.fold(text))]


@pytest.mark.parametrize(("kind", "text", "word", "typed"), [
    ("nfkc", "a \N{MATHEMATICAL BOLD SMALL S}\N{MATHEMATICAL BOLD SMALL E}"
     "\N{MATHEMATICAL BOLD SMALL X} b", "sex",
     "\N{MATHEMATICAL BOLD SMALL S}\N{MATHEMATICAL BOLD SMALL E}\N{MATHEMATICAL BOLD SMALL X}"),
    ("case", "PayPal login", "paypal", "PayPal"),
    ("full-width", "\N{FULLWIDTH LATIN CAPITAL LETTER S}\N{FULLWIDTH LATIN CAPITAL LETTER E}"
     "\N{FULLWIDTH LATIN CAPITAL LETTER X}!", "sex",
     "\N{FULLWIDTH LATIN CAPITAL LETTER S}\N{FULLWIDTH LATIN CAPITAL LETTER E}"
     "\N{FULLWIDTH LATIN CAPITAL LETTER X}"),
    ("zero-width", "pay\N{ZERO WIDTH SPACE}pa\N{ZERO WIDTH JOINER}l", "paypal",
     "pay\N{ZERO WIDTH SPACE}pa\N{ZERO WIDTH JOINER}l"),
    ("spaces", "p a y p a l", "paypal", "p a y p a l"),
    ("punctuation", "p.a-y_p*a!l", "paypal", "p.a-y_p*a!l"),
    ("lookalikes", "\N{CYRILLIC SMALL LETTER ER}\N{GREEK SMALL LETTER ALPHA}y"
     "\N{CYRILLIC SMALL LETTER ER}\N{CYRILLIC SMALL LETTER A}l", "paypal",
     "\N{CYRILLIC SMALL LETTER ER}\N{GREEK SMALL LETTER ALPHA}y"
     "\N{CYRILLIC SMALL LETTER ER}\N{CYRILLIC SMALL LETTER A}l"),
    ("leet", "s3x", "sex", "s3x"),
    ("chinese", f"\u6211\u4eec{FALUN}\u597d", FALUN, FALUN),
    ("chinese-separated", "\u6cd5 \u8f6e\N{IDEOGRAPHIC FULL STOP}\u529f", FALUN,
     "\u6cd5 \u8f6e\N{IDEOGRAPHIC FULL STOP}\u529f"),
    ("chinese-full-width-space", "\u6cd5\N{IDEOGRAPHIC SPACE}\u8f6e\u529f", FALUN,
     "\u6cd5\N{IDEOGRAPHIC SPACE}\u8f6e\u529f"),
    ("latin", "I will kill you.", "kill you", "kill you"),
    ("mixed", "\u52a0V\u4fe1", WEIXIN_V, "V\u4fe1"),
    ("mixed-separated", "\u52a0 v . \u4fe1 123", WEIXIN_V, "v . \u4fe1"),
])
def test_each_evasion_kind_is_found(kind: str, text: str, word: str, typed: str) -> None:
    """The keyword is found however it is disguised, with the typed characters it spans."""
    assert (word, typed) in _found(text), kind


@pytest.mark.parametrize("text", [
    "is exactly",  # sex across two words
    "skill yourself",  # "kill you" starting and ending inside words
    "I will kill yourself",  # ...ending inside one
    "pay pals",  # paypal ending inside a word
    "love\u4fe1",  # the mixed keyword starting inside a Latin word
    "paypa",
    "\u6cd5\u8f6e",  # two of the three characters
])
def test_text_that_only_looks_close_is_not_matched(text: str) -> None:
    """Words that meet across a gap, half words and near misses are not keywords."""
    assert _found(text) == []


def test_a_keyword_inside_one_word_is_found() -> None:
    """Within one unbroken word a keyword is a substring match, as IM filters expect."""
    assert _found("sussex") == [("sex", "sex")]


@pytest.mark.parametrize(("text", "masked"), [
    ("a s.e.x b", "a ***** b"),
    ("\N{FULLWIDTH LATIN CAPITAL LETTER S}\N{ZERO WIDTH SPACE}"
     "\N{FULLWIDTH LATIN CAPITAL LETTER E}X!", "***!"),
    ("s\N{COMBINING ACUTE ACCENT}ex sex", "*** ***"),
    (f"\u6211{FALUN}", "\u6211***"),
])
def test_mask_maps_back_to_the_characters_typed(text: str, masked: str) -> None:
    """Every matched typed character is masked; the rest of the text is kept as typed."""
    folded = FOLDER.fold(text)
    spans = [(h.start, h.end) for h in MATCHER.find(folded)]
    assert mask(text, spans, FOLDER) == masked


def test_the_harsher_action_wins_when_two_keywords_fold_alike() -> None:
    """Two spellings of one word keep the harsher action, whichever came first."""
    for rules in ([KeywordRule("Bad", "x", "review"), KeywordRule("BAD", "y", "block")],
                  [KeywordRule("BAD", "y", "block"), KeywordRule("bad", "x", "review")]):
        (hit,) = KeywordMatcher(rules, FOLDER).find(FOLDER.fold("so bad"))
        assert (hit.action, hit.category) == ("block", "y")


def test_keywords_with_nothing_to_match_are_skipped() -> None:
    """A keyword of only symbols or spaces cannot match everything: it is left out."""
    matcher = KeywordMatcher([KeywordRule("!!!", "x", "block"), KeywordRule("   ", "x", "block")],
                             FOLDER)
    assert len(matcher) == 0
    assert matcher.find(FOLDER.fold("hello!!!")) == []


def test_overlapping_keywords_are_all_reported() -> None:
    """Keywords that overlap or nest are each found once."""
    matcher = KeywordMatcher([KeywordRule("abc", "x", "mask"), KeywordRule("bcd", "y", "mask"),
                              KeywordRule("b", "z", "review")], Folder())
    assert sorted(h.rule for h in matcher.find(Folder().fold("abcd"))) == ["abc", "b", "bcd"]


def _reference_find(rules: list[KeywordRule], folder: Folder, text: str) -> list[Hit]:
    """What find must return, by looking for every keyword at every place of the folded
    text, and taking each fair match back through fold_by_char's arrays."""
    harshest: dict[str, KeywordRule] = {}
    for rule in rules:
        key = folder.key(rule.word)
        if key and (key not in harshest
                    or SEVERITY[rule.action] > SEVERITY[harshest[key].action]):
            harshest[key] = rule
    folded, origin, starts = folder.fold_by_char(text)
    hits = []
    for key, rule in harshest.items():
        start = folded.find(key)
        while start != -1:
            end = start + len(key)
            if not any(starts[start + 1 : end]) or (
                    starts[start] and (end == len(folded) or starts[end])):
                a, b = origin[start], origin[end - 1] + 1
                while b < len(text) and unicodedata.category(text[b]) in ("Mn", "Me"):
                    b += 1
                hits.append(Hit("keyword", rule.action, rule.category, rule.word, a, b))
            start = folded.find(key, start + 1)
    return hits


def _key(hit: Hit) -> tuple[int, int, str]:
    return hit.start, hit.end, hit.rule


@pytest.mark.parametrize("ascii_only", [True, False])
def test_the_automaton_finds_what_looking_everywhere_finds(ascii_only: bool) -> None:
    """Over many made-up texts and lists (overlapping, nested, in several scripts, with
    characters outside the BMP), find reports exactly the reference's hits, by end."""
    words = generated.texts(generated.FOLD_PIECES, 300, seed=5, ascii_only=ascii_only,
                            longest=3)
    actions: list[Action] = ["block", "mask", "review"]
    rules = [KeywordRule(w, f"c{i % 7}", actions[i % 3]) for i, w in enumerate(words) if w]
    matcher = KeywordMatcher(rules, FOLDER)
    for text in generated.texts(generated.FOLD_PIECES, 400, seed=6, ascii_only=ascii_only):
        hits = matcher.find(FOLDER.fold(text))
        assert sorted(hits, key=_key) == sorted(_reference_find(rules, FOLDER, text),
                                                key=_key), text
        assert [h.end for h in hits] == sorted(h.end for h in hits), text
