"""The README stays true: its settings table and the commands CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    """Each field of Settings has a row PARLEY_<NAME> in the README's settings table."""
    rows = dict(re.findall(r"^\| `(PARLEY_[A-Z0-9_]+)` \| ([^|]+) \|", README, re.M))
    for name, field in Settings.model_fields.items():
        var = f"PARLEY_{name.upper()}"
        assert var in rows, f"{var} is missing from the README"
        default = field.default
        if default is not None and not isinstance(default, bool):
            assert str(default).rstrip("0").rstrip(".") in rows[var].replace("`", ""), var
    assert set(rows) == {f"PARLEY_{n.upper()}" for n in Settings.model_fields}


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run contains the README's test command word for word."""
    blocks = re.findall(r"```sh\n(.+?)\n```", README, re.S)
    test_command = next(b for b in blocks if "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()

