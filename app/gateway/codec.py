"""Frame codecs. Pure functions of bytes and objects; no sockets here.

The JSON codec is the first; a compact binary one for mobile clients will sit beside
it, and a connection picks one at upgrade time.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.errors import ProtocolError

# The one-byte heartbeat, both ways. Everything else is a JSON object.
HEARTBEAT = "h"


class JsonCodec:
    name = "json"

    @staticmethod
    def decode(text: str) -> dict[str, Any]:
        if text == "":
            raise ProtocolError("Empty frame.", code="empty_frame")
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError("The frame is not valid JSON.", code="invalid_json") from exc
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ProtocolError(
                'A frame is a JSON object with a string "type".', code="invalid_frame"
            )
        return frame

    @staticmethod
    def encode(frame: dict[str, Any]) -> str:
        return orjson.dumps(frame).decode()
