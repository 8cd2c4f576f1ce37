"""Async client of mpc.v1.SignerService: mutual TLS, the service JWT, and protocol-message HMACs.

One `SignerClient` owns one gRPC channel (reused by every call; creating channels per call is
what makes clients slow). Every ProtocolMessage the signer returns is checked against the
client's HMAC key ring before it is handed on, so a relay built on this client never forwards a
forged message. Freshness (strictly increasing sequence numbers per session and sender) is
enforced where messages are consumed: by the recipient signer and by `LocalParty`; here a
retried, idempotent start legitimately returns the same messages again. `RemoteParty` adapts a
client to the relay's party interface.

    async with SignerClient.connect("127.0.0.1:9091", ca=..., cert=..., key=..., hmac=ring,
                                    token_key=Path("var/certs/jwt.key")) as client:
        response = await client.start_dkg(...)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from mpc.v1 import signer_pb2 as pb
from mpc.v1 import signer_pb2_grpc
from signer.auth.envelope import HmacKeyRing
from signer.auth.jwt import load_signing_key, mint_token
from signer.client.exchange import ExchangeChannel
from signer.client.spec import RESULT_FIELDS, Outcome, SessionSpec

TOKEN_REFRESH_MARGIN = 30


@dataclass
class TokenSource:
    """A fixed bearer token, or a signing key that mints fresh tokens before they expire."""

    token: str | None = field(default=None, repr=False)
    signing_key: Any = field(default=None, repr=False)
    algorithm: str = ""
    kid: str = "dev"
    issuer: str = "mpc-service"
    audience: str = "mpc-signer"
    subject: str = "mpc-service"
    lifetime_seconds: int = 300
    _expires: float = 0.0

    @classmethod
    def from_key_file(cls, path: Path, **kw: Any) -> TokenSource:
        algorithm, key = load_signing_key(path)
        return cls(signing_key=key, algorithm=algorithm, **kw)

    def current(self) -> str:
        if self.signing_key is None:
            if self.token is None:
                raise ValueError("a token or a signing key is needed")
            return self.token
        now = time.time()
        if self.token is None or now > self._expires - TOKEN_REFRESH_MARGIN:
            self.token = mint_token(
                self.signing_key,
                self.algorithm,
                kid=self.kid,
                issuer=self.issuer,
                audience=self.audience,
                subject=self.subject,
                lifetime_seconds=self.lifetime_seconds,
                now=int(now),
            )
            self._expires = now + self.lifetime_seconds
        return self.token


class SignerClient:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        tokens: TokenSource,
        hmac: HmacKeyRing,
        *,
        timeout: float = 30.0,
        exchange: bool = False,
    ) -> None:
        self._channel = channel
        self._stub = signer_pb2_grpc.SignerServiceStub(channel)
        self._tokens = tokens
        self.hmac = hmac
        self._timeout = timeout
        # The call metadata for the current token, built only when a new token is minted (grpc
        # copies it into each call and never changes it, so calls can share it).
        self._auth_metadata = grpc.aio.Metadata()
        self._auth_token: str | None = None
        # Session calls as messages on one Exchange stream instead of unary RPCs (cheaper per call).
        self._exchange = ExchangeChannel(channel, self._metadata, lambda: self._auth_token or "") if exchange else None

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        ca: Path,
        cert: Path,
        key: Path,
        hmac: HmacKeyRing,
        token: str | None = None,
        token_key: Path | None = None,
        server_name: str | None = None,
        timeout: float = 30.0,
        exchange: bool = False,
        **token_claims: Any,
    ) -> SignerClient:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.read_bytes(), private_key=key.read_bytes(), certificate_chain=cert.read_bytes()
        )
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        channel = grpc.aio.secure_channel(target, credentials, options=options)
        if token_key is not None:
            tokens = TokenSource.from_key_file(token_key, **token_claims)
        elif token is not None:
            tokens = TokenSource(token=token)
        else:
            raise ValueError("give a token or a token_key to mint tokens with")
        return cls(channel, tokens, hmac, timeout=timeout, exchange=exchange)

    async def __aenter__(self) -> SignerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel itself, for the other services the signer serves (health, reflection)."""
        return self._channel

    async def close(self) -> None:
        if self._exchange is not None:
            await self._exchange.close()
        await self._channel.close()

    def _metadata(self) -> grpc.aio.Metadata:
        token = self._tokens.current()
        if token is not self._auth_token:
            self._auth_metadata = grpc.aio.Metadata(("authorization", f"Bearer {token}"))
            self._auth_token = token
        return self._auth_metadata

    async def _session_call(self, field: str, method: Any, request: Any) -> Any:
        """One session call: on the Exchange stream when this client uses one, else as a unary RPC."""
        if self._exchange is not None:
            return await self._exchange.call(field, request, self._timeout)
        return await method(request, metadata=self._metadata(), timeout=self._timeout)

    def check_incoming(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        """HMAC of messages a signer sent; raises MessageAuthError."""
        self.hmac.verify_all(messages)
        return list(messages)

    def sign_outgoing(self, message: pb.ProtocolMessage) -> pb.ProtocolMessage:
        self.hmac.sign(message)
        return message

    def party(self, party_id: str) -> RemoteParty:
        """This signer as party `party_id` of one relayed session."""
        return RemoteParty(self, party_id)

    async def ping(self, attestation_nonce: bytes = b"") -> pb.PingResponse:
        request = pb.PingRequest(attestation_nonce=attestation_nonce)
        return await self._stub.Ping(request, timeout=self._timeout)  # type: ignore[no-any-return]

    async def validate_key(self, key_id: str, self_party_id: str = "") -> pb.ValidateKeyResponse:
        """Have the node's enclave check its share of `key_id` (signs nothing); unary always."""
        request = pb.ValidateKeyRequest(key_id=key_id, self_party_id=self_party_id)
        return await self._stub.ValidateKey(request, metadata=self._metadata(), timeout=self._timeout)  # type: ignore[no-any-return]

    async def get_key(self, key_id: str) -> pb.KeyInfo:
        """This node's record of `key_id` (NOT_FOUND if it has none)."""
        response = await self._session_call("get_key", self._stub.GetKey, pb.GetKeyRequest(key_id=key_id))
        return response.key  # type: ignore[no-any-return]

    async def list_keys(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        protocol: pb.Protocol = pb.PROTOCOL_UNSPECIFIED,
        state: pb.KeyState = pb.KEY_STATE_UNSPECIFIED,
    ) -> pb.ListKeysResponse:
        """One page of this node's keys (key id order); pass `next_page_token` back for the next."""
        request = pb.ListKeysRequest(page_size=page_size, page_token=page_token, protocol=protocol, state=state)
        return await self._session_call("list_keys", self._stub.ListKeys, request)  # type: ignore[no-any-return]

    async def all_keys(
        self, *, protocol: pb.Protocol = pb.PROTOCOL_UNSPECIFIED, state: pb.KeyState = pb.KEY_STATE_UNSPECIFIED
    ) -> list[pb.KeyInfo]:
        """Every page of `list_keys`, in key id order."""
        keys: list[pb.KeyInfo] = []
        token = ""
        while True:
            page = await self.list_keys(page_token=token, protocol=protocol, state=state)
            keys.extend(page.keys)
            token = page.next_page_token
            if not token:
                return keys

    async def retire_key(self, key_id: str) -> pb.KeyInfo:
        """Destroy this node's share of `key_id` (idempotent); the retired record. Only once every
        party of the key's successor answers `get_key` ACTIVE with the same public key (README)."""
        response = await self._session_call("retire_key", self._stub.RetireKey, pb.RetireKeyRequest(key_id=key_id))
        return response.key  # type: ignore[no-any-return]

    async def start_dkg(self, request: pb.StartDKGRequest) -> pb.StartDKGResponse:
        response = await self._session_call("start_dkg", self._stub.StartDKG, request)
        self.check_incoming(response.outgoing)
        return response  # type: ignore[no-any-return]

    async def start_refresh(self, request: pb.StartRefreshRequest) -> pb.StartRefreshResponse:
        response = await self._session_call("start_refresh", self._stub.StartRefresh, request)
        self.check_incoming(response.outgoing)
        return response  # type: ignore[no-any-return]

    async def start_reshare(self, request: pb.StartReshareRequest) -> pb.StartReshareResponse:
        response = await self._session_call("start_reshare", self._stub.StartReshare, request)
        self.check_incoming(response.outgoing)
        return response  # type: ignore[no-any-return]

    async def start_repair(self, request: pb.StartRepairRequest) -> pb.StartRepairResponse:
        response = await self._session_call("start_repair", self._stub.StartRepair, request)
        self.check_incoming(response.outgoing)
        return response  # type: ignore[no-any-return]

    async def identity_key(self) -> bytes:
        """This node's enclave identity key (PingResponse.enclave_public_key), which a reshare
        names in new_party_keys for it as a party new to the key, and a repair as
        repair_party_key for it as the repaired party. In attestation mode "nitro",
        check it with `signer.client.attestation` before trusting it; mode "none" vouches for
        nothing."""
        response = await self.ping()
        if not response.enclave_public_key:
            raise RuntimeError(f"node {response.node_id}: its enclave does not answer, so it has no identity key now")
        return response.enclave_public_key

    async def start_sign(self, request: pb.StartSignRequest) -> pb.StartSignResponse:
        response = await self._session_call("start_sign", self._stub.StartSign, request)
        self.check_incoming(response.outgoing)
        return response  # type: ignore[no-any-return]

    async def start_presign(self, request: pb.StartPresignRequest) -> pb.StartPresignResponse:
        response = await self._session_call("start_presign", self._stub.StartPresign, request)
        self.check_incoming(response.outgoing)
        return response  # type: ignore[no-any-return]

    async def submit(self, messages: Sequence[pb.ProtocolMessage]) -> pb.SubmitProtocolMessageResponse:
        request = pb.SubmitProtocolMessageRequest(messages=messages)
        response = await self._session_call("submit_protocol_message", self._stub.SubmitProtocolMessage, request)
        self.check_incoming(response.outgoing)
        return response  # type: ignore[no-any-return]

    async def dkg_status(self, session_id: str) -> pb.GetDKGStatusResponse:
        request = pb.GetDKGStatusRequest(session_id=session_id)
        return await self._session_call("get_dkg_status", self._stub.GetDKGStatus, request)  # type: ignore[no-any-return]

    async def refresh_status(self, session_id: str) -> pb.GetRefreshStatusResponse:
        request = pb.GetRefreshStatusRequest(session_id=session_id)
        return await self._session_call("get_refresh_status", self._stub.GetRefreshStatus, request)  # type: ignore[no-any-return]

    async def reshare_status(self, session_id: str) -> pb.GetReshareStatusResponse:
        request = pb.GetReshareStatusRequest(session_id=session_id)
        return await self._session_call("get_reshare_status", self._stub.GetReshareStatus, request)  # type: ignore[no-any-return]

    async def repair_status(self, session_id: str) -> pb.GetRepairStatusResponse:
        request = pb.GetRepairStatusRequest(session_id=session_id)
        return await self._session_call("get_repair_status", self._stub.GetRepairStatus, request)  # type: ignore[no-any-return]

    async def sign_status(self, session_id: str) -> pb.GetSignStatusResponse:
        request = pb.GetSignStatusRequest(session_id=session_id)
        return await self._session_call("get_sign_status", self._stub.GetSignStatus, request)  # type: ignore[no-any-return]

    async def presign_status(self, session_id: str) -> pb.GetPresignStatusResponse:
        request = pb.GetPresignStatusRequest(session_id=session_id)
        response = await self._session_call("get_presign_status", self._stub.GetPresignStatus, request)
        return response  # type: ignore[no-any-return]


class RemoteParty:
    """A signer node as a party of one relayed session."""

    def __init__(self, client: SignerClient, party_id: str) -> None:
        self.client = client
        self.party_id = party_id
        self._spec: SessionSpec | None = None
        self.outcome = Outcome(party_id)

    remote = True  # the relay starts local parties first and hands their messages to this start

    async def start(self, spec: SessionSpec, initial: Sequence[pb.ProtocolMessage] = ()) -> list[pb.ProtocolMessage]:
        self._spec = spec
        me = self.party_id
        if spec.kind == "dkg":
            response: Any = await self.client.start_dkg(spec.dkg_request(me, initial))
        elif spec.kind == "refresh":
            response = await self.client.start_refresh(spec.refresh_request(me, initial))
        elif spec.kind == "reshare":
            response = await self.client.start_reshare(spec.reshare_request(me, initial))
        elif spec.kind == "repair":
            response = await self.client.start_repair(spec.repair_request(me, initial))
        elif spec.kind == "sign":
            response = await self.client.start_sign(spec.sign_request(me, initial))
        else:
            response = await self.client.start_presign(spec.presign_request(me, initial))
        self.outcome.state = response.state
        if response.HasField("result"):
            self.outcome.result = pb.SessionResult(**{RESULT_FIELDS[spec.kind]: response.result})
        if response.HasField("failure"):
            self.outcome.failure = response.failure
        return list(response.outgoing)

    async def deliver(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        response = await self.client.submit(messages)
        self.outcome.state = response.state
        if response.HasField("result"):
            self.outcome.result = response.result
        if response.HasField("failure"):
            self.outcome.failure = response.failure
        return list(response.outgoing)

    async def abort(self, reason: str) -> None:
        """The API has no abort: a signer drops an abandoned session at its deadline."""

    async def refresh(self) -> Outcome:
        """Read state and result with the status call of the session's kind."""
        assert self._spec is not None
        sid = self._spec.session_id
        if self._spec.kind == "dkg":
            d = await self.client.dkg_status(sid)
            result = pb.SessionResult(dkg=d.result) if d.HasField("result") else None
        elif self._spec.kind == "refresh":
            r = await self.client.refresh_status(sid)
            d, result = r, (pb.SessionResult(dkg=r.result) if r.HasField("result") else None)  # type: ignore[assignment]
        elif self._spec.kind == "reshare":
            t = await self.client.reshare_status(sid)
            d, result = t, (pb.SessionResult(dkg=t.result) if t.HasField("result") else None)  # type: ignore[assignment]
        elif self._spec.kind == "repair":
            u = await self.client.repair_status(sid)
            d, result = u, (pb.SessionResult(dkg=u.result) if u.HasField("result") else None)  # type: ignore[assignment]
        elif self._spec.kind == "sign":
            s = await self.client.sign_status(sid)
            d, result = s, (pb.SessionResult(sign=s.result) if s.HasField("result") else None)  # type: ignore[assignment]
        else:
            p = await self.client.presign_status(sid)
            d, result = p, (pb.SessionResult(presign=p.result) if p.HasField("result") else None)  # type: ignore[assignment]
        self.outcome.state = d.state
        self.outcome.result = result
        self.outcome.failure = d.failure if d.HasField("failure") else None
        return self.outcome
