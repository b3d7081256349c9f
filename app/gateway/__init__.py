"""The WebSocket data plane: connection lifecycle, heartbeat, frame codecs."""
