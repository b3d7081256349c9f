"""Settings that must agree with each other."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.moderation.policy import ModerationSettings


def test_server_defaults_are_values_an_app_could_choose() -> None:
    """Every moderation default the server allows is one the per-app settings accept."""
    for name in ("send_rate_per_second", "send_burst", "flood_window_seconds",
                 "flood_penalty_seconds", "flood_slow_interval_seconds"):
        top = Settings.model_fields[name]
        limit = next(m.le for m in top.metadata if hasattr(m, "le") and m.le is not None)
        ModerationSettings.effective(Settings(**{name: limit}), {})
        with pytest.raises(ValidationError):
            Settings(**{name: limit * 2})
