"""What the content checks find, in one shape for keywords and links alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["block", "mask", "review"]
ACTIONS: tuple[Action, ...] = ("block", "mask", "review")
# When two rules fold to the same key, or one message hits several, the harsher wins.
SEVERITY: dict[str, int] = {"review": 0, "mask": 1, "block": 2}


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule matching one place of a text."""

    source: Literal["keyword", "link"]
    action: Action
    category: str
    rule: str  # the keyword or domain as listed; for an unlisted link, its host
    start: int  # the typed characters [start, end) that matched
    end: int
