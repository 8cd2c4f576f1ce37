"""Frames: a 4-byte big-endian length, then that many bytes of one serialized message.

The length is checked against the limit before any of the body is accepted, so a peer cannot
make us buffer more than `max_bytes` for a frame; once a frame has begun, the rest must follow
within `body_timeout` seconds, so a stalled peer cannot hold a half-read frame forever. Reading
is done by `door.protocol.FramedProtocol`.
"""

from __future__ import annotations

import struct

from door.errors import FrameError

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0


def encode_frame(body: bytes, max_bytes: int) -> bytes:
    if len(body) > max_bytes:
        raise FrameError(f"refusing to send a {len(body)}-byte frame (limit {max_bytes})")
    return HEADER.pack(len(body)) + body
