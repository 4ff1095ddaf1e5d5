"""The HTTP + WebSocket front: translates requests into actor messages."""
