"""One connection of the channel as an `asyncio.Protocol`: bytes are buffered and cut into frames
as they arrive, with no task, stream or timer per frame.

A connection starts in raw mode, where `readexactly`/`write`/`drain` serve the pre-shared-key
handshake (the same calls as a stream pair), and switches to frames with `start_frames()`; bytes
the peer sent early are kept and parsed then. In frame mode:

- the length is checked as soon as the 4 header bytes are buffered, before any body byte is
  accepted as part of a frame: an oversized length closes the connection;
- once any byte of a frame has arrived, the whole frame must arrive within `body_timeout`
  seconds (one timer, armed only while a frame is incomplete), so a stalled peer cannot hold a
  half-read frame forever; a frame completed by one read arms nothing;
- `hold(reason)` stops handing out frames and pauses reading from the socket (the kernel buffer
  then pushes back on the peer) until every reason is released; no timer runs meanwhile, since
  the wait is ours;
- the end of the stream inside a frame, a timeout or an oversized length is a `FrameError`,
  passed to `frame_failed` before the connection is closed.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from door.errors import FrameError
from door.framing import HEADER

log = logging.getLogger(__name__)

# Bytes accepted before the handshake is done (it needs 72 from a client, 72 from a server);
# beyond this, reading pauses until frames start.
_RAW_BUFFER_LIMIT = 64 * 1024


class FramedProtocol(asyncio.Protocol):
    def __init__(self, max_frame_bytes: int, body_timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._max_frame_bytes = max_frame_bytes
        self._body_timeout = body_timeout
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._framing = False
        self._processing = False
        self._holds: set[str] = set()
        self._raw_paused = False
        self._eof = False
        self.closed = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._drain_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._frames_done = 0
        self._timer_frame = -1
        self.lost: asyncio.Future[None] = self._loop.create_future()

    # -- hooks --------------------------------------------------------------------------------

    def frame_received(self, body: bytes) -> None:
        """One complete frame body; raise FrameError to close the connection."""
        raise NotImplementedError

    def frame_failed(self, exc: FrameError) -> None:
        """The byte stream broke the framing rules; the connection is being closed."""

    def writing_paused(self, paused: bool) -> None:
        """The transport's write buffer crossed its high (True) or low (False) water mark."""

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._buffer += data
        if self._framing:
            self._process()
            return
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if len(self._buffer) > _RAW_BUFFER_LIMIT and not self._raw_paused:
            self._raw_paused = True
            self._pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        if self._framing and self._buffer and not self.closed:
            self._fail(self._cut_short())
        self.closed = True
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self._wake_reader()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("connection lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True
        self.writing_paused(True)

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.writing_paused(False)

    # -- raw mode (handshake): the subset of StreamReader / StreamWriter it needs -------------

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            if self._eof or self.closed:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, n)
            self._read_waiter = self._loop.create_future()
            try:
                await self._read_waiter
            finally:
                self._read_waiter = None
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        if self._raw_paused and len(self._buffer) <= _RAW_BUFFER_LIMIT:
            self._raw_paused = False
            self._resume_reading()
        return data

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection lost")
        self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("connection lost")
        if not self._write_paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            self._drain_waiters.remove(waiter)

    # -- frame mode ---------------------------------------------------------------------------

    def start_frames(self) -> None:
        """Leave raw mode: from now on every complete frame goes to `frame_received`."""
        self._framing = True
        if self._raw_paused:
            self._raw_paused = False
            self._resume_reading()
        if self._eof and self._buffer:
            self._fail(self._cut_short())
            return
        self._process()

    def hold(self, reason: str) -> None:
        if reason in self._holds:
            return
        self._holds.add(reason)
        if len(self._holds) == 1:
            self._pause_reading()
            self._cancel_timer()

    def release(self, reason: str) -> None:
        if reason not in self._holds:
            return
        self._holds.discard(reason)
        if not self._holds and not self.closed:
            self._resume_reading()
            self._process()

    def close(self, *, abort: bool = False) -> None:
        """Close the connection: what is already written is still sent, unless `abort`."""
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def _process(self) -> None:
        if self._processing or not self._framing:
            return  # re-entered from a frame handler: the outer loop continues
        self._processing = True
        buffer = self._buffer
        try:
            while not self._holds and not self.closed:
                size = len(buffer)
                if size < HEADER.size:
                    break
                (length,) = HEADER.unpack_from(buffer)
                if length > self._max_frame_bytes:
                    self._fail(FrameError(f"frame length {length} exceeds the {self._max_frame_bytes}-byte limit"))
                    return
                end = HEADER.size + length
                if size < end:
                    break
                body = bytes(buffer[HEADER.size : end])
                del buffer[:end]
                self._frames_done += 1
                try:
                    self.frame_received(body)
                except FrameError as exc:
                    self._fail(exc)
                    return
                except Exception:
                    log.exception("closing a channel connection after an unexpected error")
                    self.close()
                    return
            self._arm_timer()
        finally:
            self._processing = False

    def _arm_timer(self) -> None:
        if not self._buffer or self._holds or self.closed:
            self._cancel_timer()
        elif self._timer is None or self._timer_frame != self._frames_done:
            # A new frame has started: it gets its own full body_timeout.
            self._cancel_timer()
            self._timer = self._loop.call_later(self._body_timeout, self._timed_out)
            self._timer_frame = self._frames_done

    def _timed_out(self) -> None:
        self._timer = None
        if not self.closed:
            self._fail(self._late())

    def _cut_short(self) -> FrameError:
        if len(self._buffer) < HEADER.size:
            return FrameError("connection closed inside a frame header")
        (length,) = HEADER.unpack_from(self._buffer)
        return FrameError(f"connection closed inside a {length}-byte frame body")

    def _late(self) -> FrameError:
        if len(self._buffer) < HEADER.size:
            return FrameError(f"frame header not received within {self._body_timeout:g}s")
        (length,) = HEADER.unpack_from(self._buffer)
        return FrameError(f"frame body of {length} bytes not received within {self._body_timeout:g}s")

    def _fail(self, exc: FrameError) -> None:
        if self.closed:
            return
        try:
            self.frame_failed(exc)
        finally:
            self.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing() and not self._holds:
            self.transport.resume_reading()
