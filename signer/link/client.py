"""Host side of the channel: the only enclave module the signer host imports.

`EnclaveClient` keeps one connection, multiplexes concurrent requests over it by request id, and
reconnects on the next call after the enclave restarts. While the enclave is down, calls fail
fast with `EnclaveUnavailable` (a connection attempt at most every `retry_interval` seconds, each
bounded by `connect_timeout`); a request that gets no answer within its timeout raises
`EnclaveTimeout`, and its effect inside the enclave is then unknown (the caller should abort the
session). Typed enclave errors arrive as `EnclaveRequestError(code, message)`.

    client = EnclaveClient(parse_address("unix://var/enclave.sock"))
    update = await client.session_start(pb.SessionStart(...))     # -> pb.SessionUpdate
    update = await client.session_deliver(pb.SessionDeliver(...)) # -> pb.SessionUpdate
    await client.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

from google.protobuf.message import DecodeError

from door import handshake
from door.address import Address, open_connection, parse_address
from door.errors import (
    EnclaveNotReached,
    EnclaveRequestError,
    EnclaveTimeout,
    EnclaveUnavailable,
    FrameError,
    HandshakeError,
    TransportError,
)
from door.framing import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_FRAME_BYTES, encode_frame
from door.handshake import OfferVerifier, load_psk
from door.protocol import FramedProtocol
from door.provisioning import USER_DATA as CHANNEL_KEY_USER_DATA
from mpc.v1 import enclave_pb2 as pb

__all__ = [
    "CHANNEL_KEY_USER_DATA",
    "Address",
    "EnclaveClient",
    "EnclaveNotReached",
    "EnclaveRequestError",
    "EnclaveTimeout",
    "EnclaveUnavailable",
    "HandshakeError",
    "OfferVerifier",
    "TransportError",
    "load_psk",
    "parse_address",
]

log = logging.getLogger(__name__)


class _Connection(FramedProtocol):
    """One connection to the enclave; `pending` maps request ids to the futures awaiting them."""

    def __init__(self, max_frame_bytes: int) -> None:
        super().__init__(max_frame_bytes, DEFAULT_BODY_TIMEOUT)
        self.pending: dict[int, asyncio.Future[pb.Response]] = {}
        self._reason = "the enclave closed the connection"

    def frame_received(self, body: bytes) -> None:
        try:
            response = pb.Response.FromString(body)
        except DecodeError:
            raise FrameError(f"{len(body)}-byte frame from the enclave is not a valid Response") from None
        future = self.pending.pop(response.request_id, None)
        if future is None:
            # The caller timed out and left; the late answer has nobody to go to.
            log.info("dropping enclave response to request %d (no longer awaited)", response.request_id)
        elif not future.done():
            future.set_result(response)

    def frame_failed(self, exc: FrameError) -> None:
        self._reason = f"bad frame from the enclave: {exc}"
        log.warning("closing enclave connection: %s", self._reason)
        self._fail_all()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.closed:
            self._reason = f"connection to the enclave lost ({type(exc).__name__})"
        super().connection_lost(exc)
        self._fail_all()

    def _fail_all(self) -> None:
        self.closed = True
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(EnclaveUnavailable(f"enclave unavailable: {self._reason}"))

    async def send(self, frame: bytes) -> None:
        self.write(frame)  # one write per frame: frames never interleave
        await self.drain()

    async def shutdown(self) -> None:
        if not self.closed:
            self._reason = "client closed"
        self.close(abort=True)  # what is still unsent belongs to calls failed here
        self._fail_all()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self.lost)


class EnclaveClient:
    def __init__(
        self,
        address: Address,
        *,
        psk: bytes | None = None,
        verify_offer: OfferVerifier | None = None,
        allow_unauthenticated: bool = False,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        call_timeout: float = 10.0,
        connect_timeout: float = 2.0,
        retry_interval: float = 0.25,
    ) -> None:
        """`verify_offer`: deliver `psk` to an enclave that has none yet, once the verifier accepted
        its attested offer (door/provisioning.py); without it such an enclave is refused."""
        if address.scheme in ("tcp", "vsock") and psk is None and not allow_unauthenticated:
            raise ValueError(f"a {address.scheme} enclave address needs a pre-shared key")
        if verify_offer is not None and psk is None:
            raise ValueError("provisioning the enclave's channel key needs the key (psk)")
        self.address = address
        self._psk = psk
        self._verify_offer = verify_offer
        self._max_frame_bytes = max_frame_bytes
        self._call_timeout = call_timeout
        self._connect_timeout = connect_timeout
        self._retry_interval = retry_interval
        self._conn: _Connection | None = None
        self._connect_lock = asyncio.Lock()
        self._last_failure: tuple[float, str] | None = None
        self._logged_refusal: str | None = None
        self._ids = itertools.count(1)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._connect_lock:
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            if self._last_failure is not None:
                failed_at, why = self._last_failure
                if time.monotonic() - failed_at < self._retry_interval:
                    raise EnclaveNotReached(f"enclave at {self.address} is unavailable: {why}")
            try:
                self._conn = await asyncio.wait_for(self._connect(), self._connect_timeout)
            except (OSError, TimeoutError, HandshakeError) as exc:
                why = str(exc) if isinstance(exc, HandshakeError) else _describe(exc)
                if isinstance(exc, HandshakeError) and why != self._logged_refusal:
                    # A wrong or claimed channel key is an operator's alarm, not a restart to wait out.
                    log.error("the enclave channel at %s refused: %s", self.address, why)
                    self._logged_refusal = why
                self._last_failure = (time.monotonic(), why)
                raise EnclaveNotReached(f"enclave at {self.address} is unavailable: {why}") from None
            self._last_failure = None
            self._logged_refusal = None
            log.info("connected to the enclave at %s", self.address)
            return self._conn

    async def _connect(self) -> _Connection:
        max_frame_bytes = self._max_frame_bytes
        conn = await open_connection(self.address, lambda: _Connection(max_frame_bytes))
        try:
            if self._psk is not None:
                await handshake.client_handshake(
                    conn, conn, self._psk, self._connect_timeout, verify_offer=self._verify_offer
                )
        except BaseException:
            conn.close()
            raise
        conn.start_frames()
        return conn

    async def call(self, request: pb.Request, *, timeout: float | None = None) -> pb.Response:
        """Send one request and wait for its response. The request_id is assigned here."""
        conn = await self._connection()
        request_id = next(self._ids)
        outgoing = pb.Request()
        outgoing.CopyFrom(request)
        outgoing.request_id = request_id
        frame = encode_frame(outgoing.SerializeToString(), self._max_frame_bytes)
        future: asyncio.Future[pb.Response] = asyncio.get_running_loop().create_future()
        conn.pending[request_id] = future
        try:
            # One timer for the whole exchange, a wait for write-buffer room included.
            async with asyncio.timeout(timeout if timeout is not None else self._call_timeout):
                try:
                    await conn.send(frame)
                except (ConnectionError, OSError) as exc:
                    raise EnclaveUnavailable(f"enclave unavailable: send failed ({type(exc).__name__})") from None
                response = await future
        except TimeoutError:
            raise EnclaveTimeout(f"the enclave did not answer request {request_id} in time") from None
        finally:
            conn.pending.pop(request_id, None)
        if response.HasField("error"):
            raise EnclaveRequestError(response.error.code, response.error.message)
        return response

    async def ping(self, *, timeout: float | None = None) -> None:
        await self.call(pb.Request(ping=pb.PingRequest()), timeout=timeout)

    async def info(self, attestation_nonce: bytes = b"", *, timeout: float | None = None) -> pb.InfoResponse:
        request = pb.Request(info=pb.InfoRequest(attestation_nonce=attestation_nonce))
        response = await self.call(request, timeout=timeout)
        _expect(response, "info")
        return response.info

    async def session_start(self, start: pb.SessionStart, *, timeout: float | None = None) -> pb.SessionUpdate:
        return _update(await self.call(pb.Request(session_start=start), timeout=timeout))

    async def session_deliver(self, deliver: pb.SessionDeliver, *, timeout: float | None = None) -> pb.SessionUpdate:
        return _update(await self.call(pb.Request(session_deliver=deliver), timeout=timeout))

    async def session_abort(self, session_id: str, reason: str, *, timeout: float | None = None) -> pb.SessionUpdate:
        request = pb.Request(session_abort=pb.SessionAbort(session_id=session_id, reason=reason))
        return _update(await self.call(request, timeout=timeout))

    async def set_aws_credentials(
        self, credentials: pb.SetAwsCredentials, *, timeout: float | None = None
    ) -> pb.AwsCredentialsSet:
        """Hand the instance role's temporary credentials to the enclave's KMS client."""
        response = await self.call(pb.Request(set_aws_credentials=credentials), timeout=timeout)
        _expect(response, "aws_credentials_set")
        return response.aws_credentials_set

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.shutdown()


def _expect(response: pb.Response, field: str) -> None:
    if response.WhichOneof("body") != field:
        raise EnclaveUnavailable(f"enclave answered {response.WhichOneof('body')!r} where {field!r} was expected")


def _update(response: pb.Response) -> pb.SessionUpdate:
    _expect(response, "session_update")
    return response.session_update


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "connection attempt timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
