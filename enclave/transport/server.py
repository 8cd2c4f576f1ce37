"""Enclave side of the channel: accept connections, read Request frames, answer Response frames.

Every request runs as its own task (a slow session request does not hold up a ping), bounded per
connection; responses are written under a lock so frames never interleave. Anything wrong with
the byte stream (oversized length, truncated frame, bytes that are not a Request, failed
handshake) closes that one connection with a logged reason; nothing a peer sends can stop the
listener or the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError

from enclave.transport import handshake
from enclave.transport.address import Address, cleanup_listener, start_listener
from enclave.transport.errors import FrameError, HandshakeError
from enclave.transport.framing import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_FRAME_BYTES, encode_frame, read_frame
from mpc.v1 import enclave_pb2 as pb

log = logging.getLogger(__name__)

RequestHandler = Callable[[pb.Request], Awaitable[pb.Response]]


def error_response(request_id: int, code: int, message: str) -> pb.Response:
    return pb.Response(request_id=request_id, error=pb.Error(code=code, message=message))  # type: ignore[arg-type]


class FrameServer:
    def __init__(
        self,
        handler: RequestHandler,
        *,
        psk: bytes | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_in_flight: int = 64,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        handshake_timeout: float = 5.0,
    ) -> None:
        self._handler = handler
        self._psk = psk
        self._max_frame_bytes = max_frame_bytes
        self._max_in_flight = max_in_flight
        self._body_timeout = body_timeout
        self._handshake_timeout = handshake_timeout
        self._server: asyncio.Server | None = None
        self._address: Address | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, address: Address) -> None:
        if address.scheme == "tcp" and self._psk is None:
            raise ValueError("a TCP listener needs a pre-shared key (--psk-file)")
        self._address = address
        self._server = await start_listener(address, self._on_connection)
        log.info("enclave listening on %s", address)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        if self._address is not None:
            cleanup_listener(self._address)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername") or "local peer"
        try:
            await self._serve_connection(reader, writer)
        except FrameError as exc:
            log.warning("closing enclave connection from %s: %s", peer, exc)
        except HandshakeError as exc:
            log.warning("closing enclave connection from %s: handshake failed: %s", peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("enclave connection from %s dropped", peer)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("closing enclave connection from %s after an unexpected error", peer)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._psk is not None:
            await handshake.server_handshake(reader, writer, self._psk, self._handshake_timeout)
        write_lock = asyncio.Lock()
        slots = asyncio.Semaphore(self._max_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                body = await read_frame(reader, self._max_frame_bytes, self._body_timeout)
                if body is None:
                    return
                try:
                    request = pb.Request.FromString(body)
                except DecodeError:
                    raise FrameError(f"{len(body)}-byte frame is not a valid Request") from None
                await slots.acquire()
                task = asyncio.create_task(self._answer(request, writer, write_lock, slots))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            for task in in_flight:
                task.cancel()

    async def _answer(
        self,
        request: pb.Request,
        writer: asyncio.StreamWriter,
        write_lock: asyncio.Lock,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            try:
                response = await self._handler(request)
            except Exception:
                log.exception("request %d failed", request.request_id)
                response = error_response(request.request_id, pb.ERROR_CODE_INTERNAL, "internal error")
            response.request_id = request.request_id
            try:
                frame = encode_frame(response.SerializeToString(), self._max_frame_bytes)
            except FrameError as exc:
                log.error("request %d: %s", request.request_id, exc)
                frame = encode_frame(
                    error_response(
                        request.request_id, pb.ERROR_CODE_INTERNAL, "response exceeds the frame limit"
                    ).SerializeToString(),
                    self._max_frame_bytes,
                )
            async with write_lock:
                writer.write(frame)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            slots.release()
