"""An app's content-security policy: its settings, and its lists compiled for matching.

A :class:`Policy` is built from the rows of one version of the app's lists and is
immutable; a change makes a new one (see :mod:`app.moderation.cache`). Building is
pure, so it can run in a worker thread and be tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.config import Settings
from app.moderation import lookalikes
from app.moderation.keywords import KeywordMatcher, KeywordRule
from app.moderation.links import DomainLists, DomainRule, UnlistedAction, check_links
from app.moderation.normalise import Folded, Folder, mask
from app.moderation.rules import Action, Hit
from app.moderation.spam import RECENT_MAX, WINDOW_MAX_SECONDS, FloodAction, SpamLimits

# Settings whose default comes from the node's environment (PARLEY_<NAME>).
NODE_DEFAULTS = (
    "send_rate_per_second", "send_burst", "flood_window_seconds", "flood_conversations",
    "flood_strangers", "flood_similarity", "flood_new_user_seconds", "flood_action",
    "flood_penalty_seconds", "flood_slow_interval_seconds",
)
LOOKALIKES_MAX = 1000


class ModerationSettings(BaseModel):
    """An app's content-security settings, as in force."""

    model_config = ConfigDict(extra="forbid")

    send_rate_per_second: float = Field(gt=0, le=1000, description="Sends a user may make "
                                        "each second, sustained (token bucket refill).")
    send_burst: int = Field(ge=1, le=10000, description="Sends a user may make at once.")
    flood_window_seconds: float = Field(gt=0, le=WINDOW_MAX_SECONDS)
    flood_conversations: int = Field(ge=0, le=RECENT_MAX, description=(
        "Nearly the same text to this many conversations in the window is a flood; 0: off."))
    flood_strangers: int = Field(ge=0, le=RECENT_MAX, description=(
        "A new user opening this many conversations in the window is a flood; 0: off."))
    flood_similarity: float = Field(gt=0, le=1, description="Jaccard of 3-grams, 0 to 1.")
    flood_new_user_seconds: float = Field(ge=0)
    flood_action: FloodAction
    flood_penalty_seconds: float = Field(gt=0, le=WINDOW_MAX_SECONDS)
    flood_slow_interval_seconds: float = Field(gt=0, le=3600)
    link_block_action: Action = Field("block", description="For links to a blocked domain.")
    link_unlisted_action: UnlistedAction = Field("none", description=(
        "For links to a domain on no list; with it not none, the allow list is what is "
        "allowed."))
    default_lookalikes: bool = Field(True, description="Fold with Parley's look-alike table.")
    lookalikes: dict[str, str] = Field(default_factory=dict, max_length=LOOKALIKES_MAX,
                                       description="The app's own entries: character to "
                                       "the letters it stands for.")

    @classmethod
    def effective(cls, node: Settings, overrides: dict[str, Any]) -> ModerationSettings:
        defaults = {name: getattr(node, name) for name in NODE_DEFAULTS}
        return cls.model_validate({**defaults, **overrides})

    def spam_limits(self) -> SpamLimits:
        return SpamLimits(
            rate_per_second=self.send_rate_per_second,
            burst=self.send_burst,
            window_seconds=self.flood_window_seconds,
            same_text_conversations=self.flood_conversations,
            similarity=self.flood_similarity,
            strangers=self.flood_strangers,
            new_user_seconds=self.flood_new_user_seconds,
            action=self.flood_action,
            penalty_seconds=self.flood_penalty_seconds,
            slow_interval_seconds=self.flood_slow_interval_seconds,
        )


@dataclass(frozen=True, slots=True)
class Inspection:
    """One text of a message, checked."""

    text: str
    hits: list[Hit]
    folder: Folder
    # The text folded, when the keywords needed it.
    _folded: Folded | None = None

    def folded(self) -> str:
        return (self._folded or self.folder.fold(self.text)).text

    def first(self, action: Literal["block", "review"]) -> Hit | None:
        return next((h for h in sorted(self.hits, key=lambda h: h.start)
                     if h.action == action), None)

    def masked(self) -> str:
        return mask(self.text, [(h.start, h.end) for h in self.hits if h.action == "mask"],
                    self.folder)


@dataclass(frozen=True)
class Policy:
    version: int
    settings: ModerationSettings
    folder: Folder
    keywords: KeywordMatcher
    domains: DomainLists
    limits: SpamLimits = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limits", self.settings.spam_limits())

    @classmethod
    def build(
        cls,
        version: int,
        settings: ModerationSettings,
        keyword_rules: Iterable[KeywordRule],
        domain_rules: Iterable[DomainRule],
    ) -> Policy:
        folder = Folder(lookalikes.table(settings.lookalikes, settings.default_lookalikes))
        return cls(version, settings, folder, KeywordMatcher(keyword_rules, folder),
                   DomainLists(domain_rules))

    def inspect(self, text: str) -> Inspection:
        # Most apps have no lists: their texts need neither folding nor link parsing,
        # which are most of a check's time (bench/content_filter.py).
        folded = self.folder.fold(text) if len(self.keywords) else None
        hits = self.keywords.find(folded) if folded is not None else []
        if len(self.domains) or self.settings.link_unlisted_action != "none":
            hits += check_links(text, self.domains, self.settings.link_block_action,
                                self.settings.link_unlisted_action)
        return Inspection(text, hits, self.folder, folded)
