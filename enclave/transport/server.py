"""Enclave side of the channel: accept connections, read Request frames, answer Response frames.

Every request runs as its own task, started in the order the requests arrived (a slow session
request does not hold up a ping); at most `max_in_flight` run per connection, beyond which the
connection stops reading until one finishes. Each response is written whole in one transport
write, so frames never interleave; when the peer stops reading responses (the write buffer is
full), the connection stops reading requests until the buffer drains. Anything wrong with the
byte stream (oversized length, truncated or stalled frame, bytes that are not a Request, failed
handshake) closes that one connection with a logged reason; nothing a peer sends can stop the
listener or the process.

Connections are bounded three ways, each counted in `gauges()` (InfoResponse.gauges):

- a connection must complete the handshake (if any) and deliver its first complete frame within
  `handshake_timeout` seconds of being accepted, or it is closed: one that never speaks (or
  stalls mid-handshake) holds nothing for long. The host's client sends its first request as
  soon as it connects (signer/link/client.py), so this never cuts an honest host;
- at most `max_connections` are open at once. One more is closed at once, unless some open
  connection has not sent its first frame yet: then the oldest such one is closed instead, so
  connections that never speak cannot lock the host out;
- an established connection with no request in flight and no frame for `idle_timeout` seconds
  is closed (None: never). The host's client keeps one connection and its health check pings
  the enclave over it every `health_interval_seconds` (1 s by default), so it is never idle that
  long; keep `idle_timeout` well above that interval (a client reconnects on its next call
  anyway, but a call racing the close fails).

Channel authentication: with a key (fixed `psk`, or one delivered once through `key_receiver`,
see provisioning.py) every connection must complete the PSK handshake before a single frame is
read. A vsock or TCP listener without either is refused unless `allow_unauthenticated` (the
`--insecure-no-channel-auth-for-development` flag): AF_VSOCK has no permissions, so any process of
any user on the parent could otherwise act as the host. A unix socket is created mode 0600, which
already limits it to the host's user (and root).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError

from door import handshake
from door.address import Address, cleanup_listener, start_listener
from door.errors import FrameError, HandshakeError
from door.framing import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_FRAME_BYTES, encode_frame
from door.handshake import ChannelKey, KeyReceiver
from door.protocol import FramedProtocol
from mpc.v1 import enclave_pb2 as pb

log = logging.getLogger(__name__)

RequestHandler = Callable[[pb.Request], Awaitable[pb.Response]]

DEFAULT_HANDSHAKE_TIMEOUT = 5.0
DEFAULT_IDLE_TIMEOUT = 300.0
DEFAULT_MAX_CONNECTIONS = 16


def error_response(request_id: int, code: int, message: str) -> pb.Response:
    return pb.Response(request_id=request_id, error=pb.Error(code=code, message=message))  # type: ignore[arg-type]


class FrameServer:
    def __init__(
        self,
        handler: RequestHandler,
        *,
        psk: bytes | None = None,
        key_receiver: KeyReceiver | None = None,
        allow_unauthenticated: bool = False,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_in_flight: int = 64,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if handshake_timeout <= 0 or (idle_timeout is not None and idle_timeout <= 0) or max_connections < 1:
            raise ValueError("channel timeouts must be positive and max_connections at least 1")
        self._handler = handler
        self._key = ChannelKey(psk, key_receiver) if psk is not None or key_receiver is not None else None
        self._allow_unauthenticated = allow_unauthenticated
        self._max_frame_bytes = max_frame_bytes
        self._max_in_flight = max_in_flight
        self._body_timeout = body_timeout
        self._handshake_timeout = handshake_timeout
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._address: Address | None = None
        # In accept order (dicts keep it), so the oldest silent connection is found first.
        self._connections: dict[_ServerConnection, None] = {}
        self._counts = dict.fromkeys(("refused", "evicted", "silent", "idle"), 0)

    def gauges(self) -> dict[str, int]:
        return {
            "channel_connections_open": len(self._connections),
            "channel_connections_limit": self._max_connections,
            "channel_connections_refused_total": self._counts["refused"],
            "channel_connections_evicted_total": self._counts["evicted"],
            "channel_connections_silent_closed_total": self._counts["silent"],
            "channel_connections_idle_closed_total": self._counts["idle"],
        }

    def _admit(self, conn: _ServerConnection) -> bool:
        """Room for one more connection (see the module docstring); False: refuse this one."""
        if len(self._connections) >= self._max_connections:
            silent = next((c for c in self._connections if not c.established), None)
            if silent is None:
                self._counts["refused"] += 1
                log.warning("refusing an enclave connection: %d are open (--max-connections)", len(self._connections))
                return False
            self._counts["evicted"] += 1
            log.warning("closing the oldest enclave connection that sent nothing yet, to admit a new one")
            silent.shut()
            self._connections.pop(silent, None)
        self._connections[conn] = None
        return True

    async def start(self, address: Address) -> None:
        if address.scheme in ("tcp", "vsock") and self._key is None and not self._allow_unauthenticated:
            raise ValueError(
                f"a {address.scheme} listener needs channel authentication: --psk-file, or --psk-provisioning "
                "attested (the host delivers its key to the attested enclave), or, for development only, "
                "--insecure-no-channel-auth-for-development"
            )
        if self._key is None and address.scheme != "unix":
            log.warning(
                "INSECURE: %s accepts unauthenticated connections (--insecure-no-channel-auth-for-development): "
                "any local process can act as the host",
                address,
            )
        self._address = address
        self._server = await start_listener(address, self._new_connection)
        log.info("enclave listening on %s", address)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            tasks: list[asyncio.Task[None]] = []
            for conn in list(self._connections):
                tasks.extend(conn.shut())
            self._connections.clear()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        if self._address is not None:
            cleanup_listener(self._address)

    def _new_connection(self) -> _ServerConnection:
        return _ServerConnection(self)


class _ServerConnection(FramedProtocol):
    def __init__(self, server: FrameServer) -> None:
        super().__init__(server._max_frame_bytes, server._body_timeout)
        self._server = server
        self._handler = server._handler
        self._max_in_flight = server._max_in_flight
        self._in_flight: set[asyncio.Task[None]] = set()
        self._handshake: asyncio.Task[None] | None = None
        self._peer: object = "local peer"
        self.established = False  # its first frame arrived
        self._last_activity = time.monotonic()
        self._watch: asyncio.TimerHandle | None = None  # first-frame, then idle timer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._peer = transport.get_extra_info("peername") or "local peer"
        if not self._server._admit(self):
            self.close(abort=True)
            return
        self._watch = self._loop.call_later(self._server._handshake_timeout, self._silent)
        key = self._server._key
        if key is None:
            self.start_frames()
        else:
            self._handshake = self._loop.create_task(self._run_handshake(key))

    async def _run_handshake(self, key: ChannelKey) -> None:
        try:
            await handshake.server_handshake(self, self, key, self._server._handshake_timeout, peer=self._peer)
        except HandshakeError as exc:
            log.warning("closing enclave connection from %s: handshake failed: %s", self._peer, exc)
            self.close()
            return
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("enclave connection from %s dropped", self._peer)
            self.close()
            return
        except Exception:
            log.exception("closing enclave connection from %s after an unexpected error", self._peer)
            self.close()
            return
        self.start_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.closed:
            log.info("enclave connection from %s dropped", self._peer)
        super().connection_lost(exc)
        self._server._connections.pop(self, None)
        self.shut()

    def _silent(self) -> None:
        self._watch = None
        if not self.closed and not self.established:
            self._server._counts["silent"] += 1
            log.warning(
                "closing enclave connection from %s: no request within %gs of connecting",
                self._peer,
                self._server._handshake_timeout,
            )
            self.shut()

    def _idle(self) -> None:
        self._watch = None
        idle = self._server._idle_timeout
        if self.closed or idle is None:
            return
        left = self._last_activity + idle - time.monotonic()
        if self._in_flight or left > 0:
            # busy, or active since the timer was armed: look again when it could be idle
            self._watch = self._loop.call_later(left if left > 0 else idle, self._idle)
            return
        self._server._counts["idle"] += 1
        log.info("closing enclave connection from %s: idle for %gs", self._peer, idle)
        self.shut()

    def shut(self) -> list[asyncio.Task[None]]:
        """Close the connection and cancel what runs for it; the tasks to wait for."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self.close()
        tasks = list(self._in_flight)
        if self._handshake is not None:
            tasks.append(self._handshake)
        for task in tasks:
            task.cancel()
        return tasks

    def frame_failed(self, exc: FrameError) -> None:
        log.warning("closing enclave connection from %s: %s", self._peer, exc)

    def writing_paused(self, paused: bool) -> None:
        if paused:
            self.hold("peer not reading responses")
        else:
            self.release("peer not reading responses")

    def frame_received(self, body: bytes) -> None:
        try:
            request = pb.Request.FromString(body)
        except DecodeError:
            raise FrameError(f"{len(body)}-byte frame is not a valid Request") from None
        self._last_activity = time.monotonic()
        if not self.established:
            self.established = True
            if self._watch is not None:
                self._watch.cancel()
            idle = self._server._idle_timeout
            self._watch = self._loop.call_later(idle, self._idle) if idle is not None else None
        task = self._loop.create_task(self._answer(request))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)
        if len(self._in_flight) >= self._max_in_flight:
            self.hold("requests in flight")

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._last_activity = time.monotonic()
        if len(self._in_flight) < self._max_in_flight:
            self.release("requests in flight")

    async def _answer(self, request: pb.Request) -> None:
        try:
            response = await self._handler(request)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("request %d failed", request.request_id)
            response = error_response(request.request_id, pb.ERROR_CODE_INTERNAL, "internal error")
        self._respond(request.request_id, response)

    def _respond(self, request_id: int, response: pb.Response) -> None:
        response.request_id = request_id
        try:
            frame = encode_frame(response.SerializeToString(), self._max_frame_bytes)
        except FrameError as exc:
            log.error("request %d: %s", request_id, exc)
            too_big = error_response(request_id, pb.ERROR_CODE_INTERNAL, "response exceeds the frame limit")
            frame = encode_frame(too_big.SerializeToString(), self._max_frame_bytes)
        if not self.closed and self.transport is not None:
            self.transport.write(frame)
