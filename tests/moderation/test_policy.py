"""An app's policy: settings over node defaults, and one text checked by keywords and
links together."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.moderation.keywords import KeywordRule
from app.moderation.links import DomainRule
from app.moderation.policy import ModerationSettings, Policy
from app.moderation.stage import map_texts


def test_settings_take_node_defaults_under_the_apps_own() -> None:
    """Fields the app did not set follow the node's environment; its own values win."""
    node = Settings(send_burst=7, flood_action="block")
    effective = ModerationSettings.effective(node, {"flood_action": "review"})
    assert (effective.send_burst, effective.flood_action) == (7, "review")
    assert effective.link_unlisted_action == "none"


@pytest.mark.parametrize("bad", [{"send_burst": 0}, {"flood_action": "nuke"},
                                 {"flood_conversations": 65}, {"unknown": 1}])
def test_settings_out_of_range_are_refused(bad: dict[str, object]) -> None:
    """Values outside their range, unknown actions and unknown names fail validation."""
    with pytest.raises(ValidationError):
        ModerationSettings.effective(Settings(), bad)


def test_one_text_is_checked_by_keywords_and_links_together() -> None:
    """A text's hits come from both lists; masks apply and the first block is reported."""
    settings = ModerationSettings.effective(Settings(), {"link_block_action": "mask"})
    policy = Policy.build(1, settings, [KeywordRule("scam", "fraud", "review"),
                                        KeywordRule("kill", "threat", "block")],
                          [DomainRule("evil.com", "block", "phishing")])
    found = policy.inspect("a s-c-a-m at www.evil.com")
    assert found.masked() == "a s-c-a-m at ************"
    assert found.first("review") is not None and found.first("block") is None
    assert policy.inspect("I will kill").first("block") is not None


def test_custom_content_has_its_text_and_data_strings_checked_but_not_its_keys() -> None:
    """Every string in a custom message's data is passed through; keys and types are not."""
    content = {"type": "custom", "custom_type": "card", "text": "a",
               "data": {"title": "b", "items": ["c", {"d": "e"}], "n": 1, "ok": True}}
    seen: list[str] = []
    out = map_texts(content, lambda s: seen.append(s) or s.upper())
    assert sorted(seen) == ["a", "b", "c", "e"]
    assert out["data"] == {"title": "B", "items": ["C", {"d": "E"}], "n": 1, "ok": True}
    assert out["custom_type"] == "card" and content["text"] == "a"
