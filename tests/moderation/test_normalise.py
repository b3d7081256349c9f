"""The normaliser: one folded form for every way of typing a word, mapped back to what
was typed. Confusable characters are written by name so that the test shows them."""

from __future__ import annotations

import random
import unicodedata

import pytest

from app.moderation import lookalikes
from app.moderation.normalise import Folder, mask
from tests.moderation import generated

FOLDER = Folder(lookalikes.DEFAULT)
PLAIN = Folder()


def test_nfkc_folds_compatibility_forms() -> None:
    """Mathematical bold, circled letters and ligatures fold to the plain letters."""
    bold = "\N{MATHEMATICAL BOLD SMALL S}\N{MATHEMATICAL BOLD SMALL E}\N{MATHEMATICAL BOLD SMALL X}"
    circled = ("\N{CIRCLED LATIN SMALL LETTER S}\N{CIRCLED LATIN SMALL LETTER E}"
               "\N{CIRCLED LATIN SMALL LETTER X}")
    assert PLAIN.fold(bold).text == "sex"
    assert PLAIN.fold(circled).text == "sex"
    assert PLAIN.fold("\N{LATIN SMALL LIGATURE FI}sh").text == "fish"


def test_case_is_folded_not_just_lowered() -> None:
    """Upper and mixed case fold together, and sharp s folds to ss."""
    assert PLAIN.fold("SeX").text == "sex"
    assert PLAIN.fold("Stra\N{LATIN SMALL LETTER SHARP S}e").text == PLAIN.fold("STRASSE").text


def test_full_width_folds_to_half_width() -> None:
    """Full-width letters, digits and the full-width full stop become their ASCII forms."""
    typed = ("\N{FULLWIDTH LATIN CAPITAL LETTER S}\N{FULLWIDTH LATIN SMALL LETTER E}"
             "\N{FULLWIDTH LATIN SMALL LETTER X}\N{FULLWIDTH DIGIT ONE}")
    assert PLAIN.fold(typed).text == "sex1"


@pytest.mark.parametrize("invisible", [
    "\N{ZERO WIDTH SPACE}", "\N{ZERO WIDTH JOINER}", "\N{ZERO WIDTH NON-JOINER}",
    "\N{WORD JOINER}", "\N{ZERO WIDTH NO-BREAK SPACE}", "\N{SOFT HYPHEN}",
    "\N{VARIATION SELECTOR-16}", "\N{HANGUL FILLER}", "\N{COMBINING GRAPHEME JOINER}",
    "\N{MONGOLIAN VOWEL SEPARATOR}", "\N{TAG LATIN SMALL LETTER A}",
])
def test_invisible_characters_vanish_without_splitting_the_word(invisible: str) -> None:
    """An invisible character between letters is dropped and is not a token boundary."""
    folded = PLAIN.fold(f"s{invisible}e{invisible}x")
    assert folded.text == "sex"
    assert folded.starts == b"\x01\x00\x00"


def test_combining_marks_are_dropped() -> None:
    """Accents, precomposed or combining, and stacked marks fold away."""
    assert PLAIN.fold("caf\N{LATIN SMALL LETTER E WITH ACUTE}").text == "cafe"
    zalgo = "s\N{COMBINING ACUTE ACCENT}\N{COMBINING TILDE}e\N{COMBINING DIAERESIS}x"
    assert PLAIN.fold(zalgo).text == "sex"


@pytest.mark.parametrize("typed", ["s e x", "s.e.x", "s-e-x", "s_e_x", "s*e*x", "s\ne\tx",
                                   "s\N{IDEOGRAPHIC SPACE}e\N{IDEOGRAPHIC FULL STOP}x",
                                   "s\N{GRINNING FACE}e\N{GRINNING FACE}x"])
def test_separators_are_dropped_but_mark_token_boundaries(typed: str) -> None:
    """Spaces, punctuation, symbols and emoji between letters fold away, each a boundary."""
    folded = PLAIN.fold(typed)
    assert folded.text == "sex"
    assert folded.starts == b"\x01\x01\x01"


def test_lookalikes_from_other_scripts_fold_to_latin() -> None:
    """Cyrillic, Greek and small-capital letters that look Latin fold to the Latin ones."""
    typed = ("\N{CYRILLIC SMALL LETTER ER}\N{GREEK SMALL LETTER ALPHA}"
             "\N{CYRILLIC SMALL LETTER U}\N{CYRILLIC CAPITAL LETTER ER}"
             "\N{CYRILLIC SMALL LETTER A}l")
    assert FOLDER.fold(typed).text == "paypal"
    assert FOLDER.fold("\N{LATIN LETTER SMALL CAPITAL S}3x").text == "sex"
    assert PLAIN.fold(typed).text != "paypal"


def test_an_app_table_adds_and_overrides_entries() -> None:
    """An app's own entries apply after the default; a character may map to nothing."""
    table = lookalikes.table({"\N{BLACK HEART SUIT}": "o", "1": "l", "~": ""}, use_default=True)
    folder = Folder(table)
    assert folder.fold("l\N{BLACK HEART SUIT}ve").text == "love"
    assert folder.fold("1ie").text == "lie"
    assert folder.fold("s~ex").starts == b"\x01\x00\x00"
    assert Folder(lookalikes.table({}, use_default=False)).fold("s3x").text == "s3x"


def test_bad_lookalike_entries_are_refused() -> None:
    """A key that is not one character, or an overlong replacement, is invalid_lookalike."""
    from app.errors import InvalidRequest

    for entries in ({"ab": "x"}, {"a": "x" * 9}, {"": "x"}):
        with pytest.raises(InvalidRequest) as caught:
            lookalikes.checked(entries)
        assert caught.value.code == "invalid_lookalike"


def test_unspaced_scripts_make_each_character_a_token() -> None:
    """Each Chinese character starts a token, as does Latin text that follows one."""
    folded = PLAIN.fold("\u6211\u4eec\u6cd5 \u8f6e\u529fok")
    assert folded.text == "\u6211\u4eec\u6cd5\u8f6e\u529fok"
    assert folded.starts == b"\x01\x01\x01\x01\x01\x01\x00"


@pytest.mark.parametrize(("typed", "start", "end", "fair"), [
    ("is exactly", 1, 4, False),  # "sex" across two words
    ("fu ck", 0, 4, True),  # a word split in two
    ("fu ckyou", 0, 4, False),  # ...but ending inside the next word
    ("motherfucker", 6, 10, True),  # inside one word
    ("s e x", 0, 3, True),
])
def test_a_match_across_a_gap_must_cover_whole_tokens(typed: str, start: int, end: int,
                                                      fair: bool) -> None:
    """A span within one token is fair; one crossing a gap must start and end at tokens."""
    assert PLAIN.fold(typed).whole_tokens(start, end) is fair


def test_typed_span_maps_folded_positions_back_with_trailing_marks() -> None:
    """A folded span maps to the typed characters, including marks on its last letter."""
    typed = "a \N{FULLWIDTH LATIN SMALL LETTER S}.e.x\N{COMBINING ACUTE ACCENT}!"
    folded = PLAIN.fold(typed)
    assert folded.text == "asex"
    assert folded.typed_span(1, 4) == (2, 8)


@pytest.mark.parametrize(("typed", "span", "masked"), [
    ("a s.e.x b", (2, 7), "a ***** b"),
    ("s\N{ZERO WIDTH SPACE}ex!", (0, 4), "***!"),
    ("\N{LATIN SMALL LIGATURE FI}sh", (0, 2), "**h"),
    ("x\N{COMBINING ACUTE ACCENT}y", (0, 2), "*y"),
    ("\u6cd5 \u8f6e\u529f\u597d", (0, 4), "****\u597d"),
])
def test_mask_replaces_each_typed_character_and_drops_invisible_ones(
    typed: str, span: tuple[int, int], masked: str
) -> None:
    """Every visible typed character in a span becomes one *, invisible ones are removed."""
    assert mask(typed, [span], PLAIN) == masked


def _fair(starts: bytes, start: int, end: int) -> bool:
    """whole_tokens, stated on the per-character token starts."""
    if not any(starts[start + 1 : end]):
        return True
    return bool(starts[start]) and (end == len(starts) or bool(starts[end]))


def _spans(length: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(length) for b in range(a + 1, min(length, a + 6) + 1)]


FOLDERS = {
    "plain": PLAIN,
    "default table": FOLDER,
    # An app's table that makes ASCII fold to nothing and to other scripts, so that
    # ASCII text takes the general path.
    "app table": Folder(lookalikes.table({"~": "", "q": "\u6cd5", "z": "zz"}, use_default=True)),
}


@pytest.mark.parametrize("name", FOLDERS)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_fold_gives_what_folding_one_character_at_a_time_gives(name: str,
                                                               ascii_only: bool) -> None:
    """Over many made-up texts, fold's text, token starts, fair spans and typed spans are
    those of fold_by_char, the definition: its fast paths change nothing."""
    folder = FOLDERS[name]
    for typed in generated.texts(generated.FOLD_PIECES, 600, seed=11, ascii_only=ascii_only):
        text, origin, starts = folder.fold_by_char(typed)
        folded = folder.fold(typed)
        assert (folded.text, folded.starts) == (text, starts), typed
        for a, b in _spans(len(text)):
            assert folded.whole_tokens(a, b) is _fair(starts, a, b), (typed, a, b)
            first, last = origin[a], origin[b - 1] + 1
            while last < len(typed) and unicodedata.category(typed[last]) in ("Mn", "Me"):
                last += 1
            assert folded.typed_span(a, b) == (first, last), (typed, a, b)


def _reference_mask(typed: str, spans: list[tuple[int, int]], folder: Folder) -> str:
    """mask, one typed character at a time."""
    covered = [any(a <= i < b for a, b in spans) for i in range(len(typed))]
    return "".join(ch if not covered[i] else ("*" if folder.fold_char(ch) else "")
                   for i, ch in enumerate(typed))


def test_mask_gives_what_masking_one_character_at_a_time_gives() -> None:
    """Over many made-up texts and overlapping, nested, touching and empty spans, mask
    keeps, stars and removes the characters the plain definition does."""
    rng = random.Random(12)
    for typed in generated.texts(generated.FOLD_PIECES, 600, seed=13):
        n = len(typed)
        spans = [tuple(sorted((rng.randint(0, n), rng.randint(0, n))))
                 for _ in range(rng.randint(1, 4))]
        assert mask(typed, spans, FOLDER) == _reference_mask(typed, spans, FOLDER), (
            typed, spans)
