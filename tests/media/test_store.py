"""The local-disk media store."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.media.store import LocalDiskStore

KEY = "7/" + "ab" * 16


async def test_bytes_come_back_as_written_and_go_when_deleted(tmp_path: Path) -> None:
    """put then get returns the bytes; after delete, get returns None."""
    store = LocalDiskStore(tmp_path)
    await store.put(KEY, b"picture")
    assert await store.get(KEY) == b"picture"
    assert (tmp_path / "7" / "ab" / ("ab" * 16)).exists()
    await store.delete(KEY)
    assert await store.get(KEY) is None


@pytest.mark.parametrize("key", ["../etc/passwd", "7/../../x", "7/" + "AB" * 16, "x/y"])
async def test_a_key_that_is_not_a_media_key_is_refused(tmp_path: Path, key: str) -> None:
    """Keys are app ID and media ID only, so none can lead outside the folder."""
    with pytest.raises(ValueError):
        await LocalDiskStore(tmp_path).put(key, b"x")
