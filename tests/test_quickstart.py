"""examples/quickstart.py, run the way a new developer runs it, against a real server."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import ADMIN_TOKEN, ROOT, Server

EXAMPLE = ROOT / "examples" / "quickstart.py"
STEPS = [
    "creates an app",
    "imports two users",
    "mints a login token",
    "connect to ws://",
    "exchange messages",
    "Bob disconnects",
    "Bob reconnects",
    "chat log",
]
# An app secret ("as_") or login token ("lt_") with more than the short prefix shown.
WHOLE_CREDENTIAL = re.compile(r"\b(as|lt)_[A-Za-z0-9_-]{3,}")


def run_example(server: Server, admin_token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), "--base-url", server.base_url,
         "--admin-token", admin_token],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_quickstart_walks_through_every_step(server: Server) -> None:
    """Against a working server the example goes through all eight steps and exits 0."""
    result = run_example(server, ADMIN_TOKEN)

    assert result.returncode == 0, result.stdout + result.stderr
    for number, words in enumerate(STEPS, start=1):
        assert re.search(rf"Step {number}/8: .*{re.escape(words)}", result.stdout), words
    assert "2 unread" in result.stdout
    assert "Every step behaved as documented." in result.stdout
    assert not WHOLE_CREDENTIAL.search(result.stdout + result.stderr)
    assert ADMIN_TOKEN not in result.stdout + result.stderr


def test_quickstart_fails_at_step_one_with_a_wrong_admin_token(server: Server) -> None:
    """With a wrong admin token the example names step 1 and exits non-zero."""
    result = run_example(server, "not-" + ADMIN_TOKEN)

    assert result.returncode == 1
    assert "FAILED at step 1/8" in result.stderr
    assert "bad_admin_token" in result.stderr
    assert "Step 2/8" not in result.stdout
