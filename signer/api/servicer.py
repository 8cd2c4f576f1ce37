"""mpc.v1.SignerService: thin methods that validate (convert), delegate (sessions, enclave) and
shape the response. Errors propagate as typed exceptions to the error-mapping interceptor."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any, TypeVar

import grpc

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from mpc.v1 import signer_pb2_grpc
from signer.api.exchange import CallDone, ExchangeHandler
from signer.api.keys import KeyDirectory
from signer.api.operations import (
    Operations,
    caller_id,
    caller_name,
    check_distinct_numbers,
    refuse_retired,
    sealed_blob_refusal,
)
from signer.api.validation import validate_key
from signer.errors import InvalidArgument
from signer.link.client import EnclaveClient, EnclaveRequestError, TransportError
from signer.link.health import EnclaveStatus
from signer.sessions import convert
from signer.sessions.registry import Answering, Hook, HostSession, Sessions

_Response = TypeVar("_Response")

log = logging.getLogger(__name__)

MAX_ATTESTATION_NONCE_BYTES = 512
PING_ENCLAVE_TIMEOUT = 2.0


def signer_version() -> str:
    try:
        return metadata.version("mpc-signer")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class SignerServicer(signer_pb2_grpc.SignerServiceServicer):
    def __init__(
        self,
        *,
        node_id: str,
        enclave: EnclaveClient,
        sessions: Sessions,
        status: EnclaveStatus,
        operations: Operations | None = None,
        call_done: CallDone | None = None,
        token_leeway_seconds: float = 0.0,
        key_retired: Callable[[], None] | None = None,
    ) -> None:
        self._node_id = node_id
        self._enclave = enclave
        self._sessions = sessions
        self._status = status
        self._operations = operations
        self._version = signer_version()
        self._keys = (
            KeyDirectory(operations, sessions.running_with_key, key_retired) if operations is not None else None
        )
        self._exchange = ExchangeHandler(self, call_done=call_done, leeway_seconds=token_leeway_seconds)

    async def _start(
        self,
        start: epb.SessionStart,
        fingerprint: bytes,
        messages: Sequence[pb.ProtocolMessage],
        encoding: int = 0,
        prepare: Hook | None = None,
    ) -> tuple[Answering, list[pb.ProtocolMessage]]:
        caller = caller_name()
        try:
            return await self._sessions.start(
                start, fingerprint, encoding, prepare=prepare, caller=caller, messages=messages, caller_id=caller_id()
            )
        except EnclaveRequestError as exc:
            refusal = sealed_blob_refusal(exc, start)
            if refusal is None:
                raise
            if self._operations is not None:
                if exc.code == epb.ERROR_CODE_SEALED_IN_EARLIER_BOOT:
                    self._operations.burned("presignature", 1)
                await self._operations.audit_refused_start(start, caller, str(refusal))
            raise refusal from None

    def _prepare(self, kind: str) -> Hook:
        if self._operations is None:
            raise InvalidArgument("this node has no key store")
        hooks = {
            "sign": self._operations.prepare_sign,
            "presign": self._operations.prepare_presign,
            "refresh": self._operations.prepare_refresh,
            "reshare": self._operations.prepare_reshare,
            "repair": self._operations.prepare_repair,
        }
        return hooks[kind]

    async def Ping(self, request: pb.PingRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.PingResponse:
        if len(request.attestation_nonce) > MAX_ATTESTATION_NONCE_BYTES:
            raise InvalidArgument(f"attestation_nonce must be at most {MAX_ATTESTATION_NONCE_BYTES} bytes")
        response = pb.PingResponse(version=self._version, node_id=self._node_id)
        try:
            info = await self._enclave.info(request.attestation_nonce, timeout=PING_ENCLAVE_TIMEOUT)
        except TransportError as exc:
            log.debug("ping: enclave unavailable: %s", exc)
            response.enclave_state = pb.ENCLAVE_STATE_UNAVAILABLE
            response.attestation_mode = self._status.attestation_mode
            return response
        sealed = info.state == epb.ENCLAVE_STATE_SEALED
        response.enclave_state = pb.ENCLAVE_STATE_SEALED if sealed else pb.ENCLAVE_STATE_READY
        response.attestation_mode = info.attestation_mode
        response.enclave_version = info.version
        response.attestation_document = info.attestation_document
        response.enclave_public_key = info.enclave_public_key
        return response

    async def StartDKG(
        self, request: pb.StartDKGRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StartDKGResponse:
        start = convert.dkg_start(request)
        check_distinct_numbers(start.party_ids)
        session, outgoing = await self._start(start, convert.fingerprint(request), request.messages)
        return self._start_response(pb.StartDKGResponse, session, outgoing, "dkg")

    async def GetDKGStatus(
        self, request: pb.GetDKGStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetDKGStatusResponse:
        return await self._session_status(request.session_id, epb.SESSION_KIND_DKG, pb.GetDKGStatusResponse, "dkg")

    async def StartSign(
        self, request: pb.StartSignRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StartSignResponse:
        session, outgoing = await self._start(
            convert.sign_start(request),
            convert.fingerprint(request),
            request.messages,
            request.signature_encoding,
            self._prepare("sign"),
        )
        return self._start_response(pb.StartSignResponse, session, outgoing, "sign")

    async def GetSignStatus(
        self, request: pb.GetSignStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetSignStatusResponse:
        return await self._session_status(request.session_id, epb.SESSION_KIND_SIGN, pb.GetSignStatusResponse, "sign")

    async def StartPresign(
        self, request: pb.StartPresignRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StartPresignResponse:
        start = convert.presign_start(request)
        session, outgoing = await self._start(
            start, convert.fingerprint(request), request.messages, prepare=self._prepare("presign")
        )
        return self._start_response(pb.StartPresignResponse, session, outgoing, "presign")

    async def GetPresignStatus(
        self, request: pb.GetPresignStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetPresignStatusResponse:
        kind = epb.SESSION_KIND_PRESIGN
        return await self._session_status(request.session_id, kind, pb.GetPresignStatusResponse, "presign")

    async def StartRefresh(
        self, request: pb.StartRefreshRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StartRefreshResponse:
        start = convert.refresh_start(request)
        session, outgoing = await self._start(
            start, convert.fingerprint(request), request.messages, prepare=self._prepare("refresh")
        )
        return self._start_response(pb.StartRefreshResponse, session, outgoing, "dkg")

    async def GetRefreshStatus(
        self, request: pb.GetRefreshStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetRefreshStatusResponse:
        kind = epb.SESSION_KIND_REFRESH
        return await self._session_status(request.session_id, kind, pb.GetRefreshStatusResponse, "dkg")

    async def StartReshare(
        self, request: pb.StartReshareRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StartReshareResponse:
        start = convert.reshare_start(request)
        session, outgoing = await self._start(
            start, convert.fingerprint(request), request.messages, prepare=self._prepare("reshare")
        )
        return self._start_response(pb.StartReshareResponse, session, outgoing, "dkg")

    async def GetReshareStatus(
        self, request: pb.GetReshareStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetReshareStatusResponse:
        kind = epb.SESSION_KIND_RESHARE
        return await self._session_status(request.session_id, kind, pb.GetReshareStatusResponse, "dkg")

    async def StartRepair(
        self, request: pb.StartRepairRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StartRepairResponse:
        start = convert.repair_start(request)
        session, outgoing = await self._start(
            start, convert.fingerprint(request), request.messages, prepare=self._prepare("repair")
        )
        return self._start_response(pb.StartRepairResponse, session, outgoing, "dkg")

    async def GetRepairStatus(
        self, request: pb.GetRepairStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetRepairStatusResponse:
        kind = epb.SESSION_KIND_REPAIR
        return await self._session_status(request.session_id, kind, pb.GetRepairStatusResponse, "dkg")

    def _start_response(
        self,
        response_type: Callable[..., _Response],
        session: Answering,
        outgoing: list[pb.ProtocolMessage],
        field: str,
    ) -> _Response:
        result = self._sessions.public_result(session)
        return response_type(
            session_id=session.session_id,
            state=session.state,
            outgoing=outgoing,
            result=getattr(result, field) if result is not None else None,
            failure=session.failure(),
        )

    async def _session_status(
        self, session_id: str, kind: int, response_type: Callable[..., _Response], field: str
    ) -> _Response:
        session = await self._sessions.status(session_id, kind)
        result = self._sessions.public_result(session)
        return response_type(
            session_id=session.session_id,
            state=session.state,
            result=getattr(result, field) if result is not None else None,
            failure=session.failure(),
        )

    async def SubmitProtocolMessage(
        self, request: pb.SubmitProtocolMessageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SubmitProtocolMessageResponse:
        session, outgoing = await self._sessions.submit(request.messages)
        return _submit_response(session, outgoing, self._sessions.public_result(session))

    async def Exchange(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await self._exchange.serve(context)

    async def ValidateKey(
        self, request: pb.ValidateKeyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ValidateKeyResponse:
        key_id = convert.key_id(request.key_id)
        if request.self_party_id and not convert.PARTY_ID.fullmatch(request.self_party_id):
            raise InvalidArgument("self_party_id must be 1-64 characters of [A-Za-z0-9._:-]")
        if self._operations is None:
            raise InvalidArgument("this node has no key store")
        key = await self._operations.key_record(key_id)
        refuse_retired(key)
        answer = await validate_key(self._enclave, key, request.self_party_id)
        log.info("key %s validated: %s %s", key_id, pb.KeyValidity.Name(answer.validity), answer.reason)
        return answer

    def _key_directory(self) -> KeyDirectory:
        if self._keys is None:
            raise InvalidArgument("this node has no key store")
        return self._keys

    async def GetKey(self, request: pb.GetKeyRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.GetKeyResponse:
        return await self._key_directory().get_key(request)

    async def ListKeys(
        self, request: pb.ListKeysRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListKeysResponse:
        return await self._key_directory().list_keys(request)

    async def RetireKey(
        self, request: pb.RetireKeyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RetireKeyResponse:
        return await self._key_directory().retire_key(request)


def _submit_response(
    session: HostSession, outgoing: list[pb.ProtocolMessage], result: pb.SessionResult | None
) -> pb.SubmitProtocolMessageResponse:
    return pb.SubmitProtocolMessageResponse(
        session_id=session.session_id,
        state=session.state,  # type: ignore[arg-type]
        outgoing=outgoing,
        result=result,
        failure=session.failure(),
    )
