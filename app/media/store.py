"""Where media bytes live. :class:`MediaStore` is what the service needs; the local-disk
store fills it for one node or a shared mount, and an S3-compatible store would fill it
for nodes that share nothing (not written yet: see docs/limitations.md)."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"[0-9]{1,12}/[0-9a-f]{32}")


class MediaStore(Protocol):
    """Bytes by key. Keys are ``<app_id>/<media_id>``; a key is written once."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None:
        """The bytes, or None when the key holds nothing."""
        ...

    async def delete(self, key: str) -> None: ...


class LocalDiskStore:
    """Files under one folder: ``<root>/<app_id>/<first two hex digits>/<media_id>``, so
    no folder grows past a few thousand entries per app."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError("not a media key")
        app, media_id = key.split("/")
        return self.root / app / media_id[:2] / media_id

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Written beside the target and renamed, so a reader never sees half a file.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
