"""The idle connections scenario's machinery at a tiny size: load generators split the
connections, tokens written to the database log in, and every process is stopped."""

from __future__ import annotations

import pytest

from bench import idle, messaging


async def test_connections_are_dealt_over_several_load_generators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More connections than one generator holds go to several, and all are counted."""
    monkeypatch.setattr(idle, "CLIENTS_PER_LOADGEN", 12)
    async with messaging.relay(30) as relay:
        row = await idle.hold([messaging._idle_target(relay)], 0.1)

    assert (row["connections"], row["open_at_end"], row["failed_logins"]) == (30, 30, 0)
    assert row["rss_held_kib"] > 0 and "kib_per_connection" in row


async def test_tokens_written_to_the_database_open_sessions() -> None:
    """A token made by write_tokens logs in like a minted one, on each node."""
    async with idle.parley_nodes("sqlite", 20, 1, messaging.UNLIMITED) as targets:
        row = await idle.hold(targets, 0.1)

    assert (row["connections"], row["open_at_end"], row["failed_logins"]) == (20, 20, 0)
