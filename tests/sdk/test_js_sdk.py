"""The JavaScript SDK's own suite (`node --test sdk/js/test/`), run from pytest.

The Node tests start their own Parley (SQLite, a free loopback port) with this Python, so
they run once, not per backend. Node 20 has no global WebSocket: the tests use the `ws`
package, a development dependency installed here with `npm ci` when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "sdk" / "js"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = pytest.mark.skipif(NODE is None or NPM is None, reason="Node.js is not installed")


def install_dev_dependencies() -> None:
    """`npm ci` from the committed lock file, once per checkout."""
    if (JS / "node_modules" / "ws").is_dir():
        return
    subprocess.run([str(NPM), "ci", "--no-audit", "--no-fund"], cwd=JS, check=True,
                   timeout=300, capture_output=True)


def test_node_suite_passes() -> None:
    """Every test of `node --test sdk/js/test/` passes against a real Parley."""
    install_dev_dependencies()
    env = {**os.environ, "PARLEY_PYTHON": sys.executable}
    run = subprocess.run([str(NODE), "--test", "test/"], cwd=JS, env=env, timeout=600,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-4000:]
    assert "# fail 0" in run.stdout
