"""Frames: a 4-byte big-endian length, then that many bytes of one serialized message.

The length is checked against the limit before any of the body is read, so a peer cannot make
us buffer more than `max_bytes`; once a header has arrived the body must follow within
`body_timeout` seconds, so a stalled peer cannot hold a half-read frame forever.
"""

from __future__ import annotations

import asyncio
import struct

from enclave.transport.errors import FrameError

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0


def encode_frame(body: bytes, max_bytes: int) -> bytes:
    if len(body) > max_bytes:
        raise FrameError(f"refusing to send a {len(body)}-byte frame (limit {max_bytes})")
    return HEADER.pack(len(body)) + body


async def read_frame(
    reader: asyncio.StreamReader, max_bytes: int, body_timeout: float = DEFAULT_BODY_TIMEOUT
) -> bytes | None:
    """One frame body, or None on a clean end of stream between frames."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError("connection closed inside a frame header") from None
    (length,) = HEADER.unpack(header)
    if length > max_bytes:
        raise FrameError(f"frame length {length} exceeds the {max_bytes}-byte limit")
    try:
        return await asyncio.wait_for(reader.readexactly(length), body_timeout)
    except asyncio.IncompleteReadError:
        raise FrameError(f"connection closed inside a {length}-byte frame body") from None
    except TimeoutError:
        raise FrameError(f"frame body of {length} bytes not received within {body_timeout:g}s") from None
