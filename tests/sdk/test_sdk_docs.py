"""The getting-started examples of docs/sdk-js.md and docs/sdk-python.md run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sdk.test_js_sdk import JS, NODE, install_dev_dependencies
from tests.support import AppCreds, Server

ROOT = Path(__file__).resolve().parents[2]


def first_block(doc: str, language: str) -> str:
    text = (ROOT / "docs" / doc).read_text()
    match = re.search(rf"```{language}\n(.*?)```", text, re.S)
    assert match, f"no {language} block in {doc}"
    return match.group(1)


def run(command: list[str], cwd: Path, server: Server, app: AppCreds,
        **extra_env: str) -> str:
    env = {**os.environ, "PARLEY_URL": server.base_url, "PARLEY_APP_KEY": app.key,
           "PARLEY_APP_SECRET": app.secret, **extra_env}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_js_example_chats_both_ways(server: Server, app: AppCreds, tmp_path: Path) -> None:
    """The JavaScript example logs in two users who chat, and prints what they got."""
    install_dev_dependencies()
    shutil.copy(JS / "parley.js", tmp_path / "parley.js")
    (tmp_path / "node_modules").symlink_to(JS / "node_modules")
    (tmp_path / "example.mjs").write_text(first_block("sdk-js.md", "js"))
    out = run([str(NODE), "example.mjs"], tmp_path, server, app)
    assert "bob got: Lunch at noon?" in out
    assert "alice got: Noon works." in out and "alice unread: 1" in out


def test_python_example_runs_a_bot(server: Server, app: AppCreds, tmp_path: Path) -> None:
    """The Python example's bot answers a message, and the chat log shows both."""
    (tmp_path / "example.py").write_text(first_block("sdk-python.md", "python"))
    out = run([sys.executable, "example.py"], tmp_path, server, app,
              PYTHONPATH=str(ROOT / "sdk" / "python"))
    assert "bot got: Where is my order?" in out
    assert "1 Where is my order?\n2 It ships today." in out
