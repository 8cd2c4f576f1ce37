"""The enclave's request dispatcher: one Request in, one Response out, never an exception out.

Session requests (start / deliver / abort) go to a `SessionEngine`: the single place where the
protocol work plugs in (`EnclaveService(..., sessions=engine, preparams=engine)`). Without an
engine they are answered with ERROR_CODE_UNIMPLEMENTED; without a `PreparamsPool`, pre-parameter
export and import are. An engine signals a typed refusal by raising
`RequestRejected(code, message)`; a protocol fault is not an error but a SessionUpdate in state
FAILED naming the culprits. Any other exception becomes a generic INTERNAL error, with the
details in the enclave's own log only.

Sealed state (t-of-n unseal, enclave/unseal/): with an `unseal` gate that is sealed, Ping and Info
say so and every key operation (session start, deliver, abort, validate_key) is refused with
FAILED_PRECONDITION "node is sealed" before it reaches the engine; `unseal` requests go to the
gate. Pre-parameter export and import stay open: they use the per-boot sealer, not the durable one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Protocol

from enclave.crypto import hpke
from enclave.errors import BadInput, InvalidEncoding, InvalidParameters, RequestRejected
from enclave.tee.attestation import Attestor, NoneAttestor
from enclave.tee.credentials import CredentialsHolder
from enclave.tee.identity import EnclaveIdentity
from enclave.tee.kms import KmsUnavailable
from enclave.transport.server import error_response
from mpc.v1 import enclave_pb2 as pb

log = logging.getLogger(__name__)


def enclave_version() -> str:
    try:
        return metadata.version("mpc-signer")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class SessionEngine(Protocol):
    """What the protocol layer provides to run sessions inside the enclave (enclave/engine/)."""

    def protocols(self) -> Sequence[pb.Protocol]:
        """The `mpc.v1.enclave.Protocol` values this engine runs."""
        ...

    async def start(self, request: pb.SessionStart) -> pb.SessionUpdate: ...

    async def deliver(self, request: pb.SessionDeliver) -> pb.SessionUpdate: ...

    async def abort(self, request: pb.SessionAbort) -> pb.SessionUpdate: ...


class PreparamsPool(Protocol):
    """The engine's pool of GG20 pre-parameters, sealed at rest under this boot's key. Optional:
    without one, Info reports no pool and export and import are refused as UNIMPLEMENTED."""

    def preparams_ready(self) -> int:
        """Pre-parameter sets ready in the pool (InfoResponse.preparams_ready)."""
        ...

    def boot_sealer_kind(self) -> str:
        """The header kind of the blobs sealed under this boot's key (InfoResponse.boot_sealer_kind)."""
        ...

    async def preparams_export(self, request: pb.PreparamsExport) -> pb.PreparamsExported: ...

    async def preparams_import(self, request: pb.PreparamsImport) -> pb.PreparamsImported: ...


class UnsealGate(Protocol):
    """The t-of-n unseal state (enclave/unseal/handler.py)."""

    @property
    def sealed(self) -> bool: ...

    def sealed_error(self) -> Exception:
        """The refusal of a key operation while sealed (a RequestRejected)."""
        ...

    async def handle(self, request: pb.UnsealRequest) -> pb.UnsealStatus: ...


class KeyChecker(Protocol):
    """Key validation (enclave/engine/validation.py)."""

    async def validate(self, request: pb.ValidateKeyRequest) -> pb.KeyValidation: ...


_UNIMPLEMENTED = "protocol sessions are not available in this enclave build"
_NO_SHARES = "this enclave does not use operator shares (it runs without --sealing-shares)"
# Requests that need the durable sealer: refused while the node is sealed.
_KEY_OPERATIONS = frozenset({"session_start", "session_deliver", "session_abort", "validate_key"})
# Bound into identity attestation documents, so one is never mistaken for a KMS recipient document.
IDENTITY_USER_DATA = b"mpc-signer/enclave-identity/v1"


class EnclaveService:
    def __init__(
        self,
        *,
        attestor: Attestor | None = None,
        sessions: SessionEngine | None = None,
        preparams: PreparamsPool | None = None,
        version: str | None = None,
        identity: EnclaveIdentity | None = None,
        credentials: CredentialsHolder | None = None,
        gauges: Callable[[], Mapping[str, int]] | None = None,
        unseal: UnsealGate | None = None,
        validator: KeyChecker | None = None,
    ) -> None:
        self._attestor: Attestor = attestor if attestor is not None else NoneAttestor()
        self._identity = identity if identity is not None else EnclaveIdentity.generate()
        self._credentials = credentials
        self._sessions = sessions
        self._preparams = preparams
        self._gauges = gauges  # InfoResponse.gauges (the engine's, the channel's)
        self._version = version if version is not None else enclave_version()
        self._unseal = unseal
        self._validator = validator

    @property
    def sealed(self) -> bool:
        return self._unseal is not None and self._unseal.sealed

    async def handle(self, request: pb.Request) -> pb.Response:
        rid = request.request_id
        kind = request.WhichOneof("body")
        try:
            return await self._dispatch(rid, kind, request)
        except Exception as exc:
            return self._refusal(rid, kind, exc)

    async def _dispatch(self, rid: int, kind: str | None, request: pb.Request) -> pb.Response:
        """The answer to one request by its kind; raises what `_refusal` turns into an error."""
        if kind == "ping":
            return pb.Response(request_id=rid, ping=pb.PingResponse(sealed=self.sealed))
        if kind in _KEY_OPERATIONS and self._unseal is not None and self._unseal.sealed:
            raise self._unseal.sealed_error()
        if kind == "info":
            return pb.Response(request_id=rid, info=self._info(request.info))
        if kind in ("session_start", "session_deliver", "session_abort"):
            return pb.Response(request_id=rid, session_update=await self._session(request))
        if kind == "set_aws_credentials":
            answer = self._set_credentials(request.set_aws_credentials)
            return pb.Response(request_id=rid, aws_credentials_set=answer)
        if kind == "preparams_export":
            exported = await self._pool().preparams_export(request.preparams_export)
            return pb.Response(request_id=rid, preparams_exported=exported)
        if kind == "preparams_import":
            imported = await self._pool().preparams_import(request.preparams_import)
            return pb.Response(request_id=rid, preparams_imported=imported)
        if kind == "unseal":
            return pb.Response(request_id=rid, unseal_status=await self._gate().handle(request.unseal))
        if kind == "validate_key":
            return pb.Response(request_id=rid, key_validation=await self._checker().validate(request.validate_key))
        return error_response(rid, pb.ERROR_CODE_INVALID_ARGUMENT, "empty or unknown request kind")

    @staticmethod
    def _refusal(rid: int, kind: str | None, exc: Exception) -> pb.Response:
        """The error response for what a request raised; only typed errors say more than "internal"."""
        if isinstance(exc, RequestRejected):
            return error_response(rid, exc.code, exc.message)
        if isinstance(exc, KmsUnavailable):
            # Written for operators (KMS's error type and message, never a key or credential).
            return error_response(rid, pb.ERROR_CODE_UNAVAILABLE, f"sealing unavailable: {exc}")
        if isinstance(exc, (BadInput, InvalidParameters, InvalidEncoding)):
            # These carry messages written for callers (no secret values, see enclave.errors).
            return error_response(rid, pb.ERROR_CODE_INVALID_ARGUMENT, str(exc))
        log.error("request %d (%s) failed", rid, kind, exc_info=exc)
        return error_response(rid, pb.ERROR_CODE_INTERNAL, "internal error in the enclave")

    def _info(self, request: pb.InfoRequest) -> pb.InfoResponse:
        nonce = request.attestation_nonce
        document = b""
        if nonce:
            document = self._attestor.attest(
                public_key=self._identity.public_key, user_data=IDENTITY_USER_DATA, nonce=nonce
            ).document
        response = pb.InfoResponse(
            version=self._version,
            attestation_mode=self._attestor.mode,
            state=pb.ENCLAVE_STATE_SEALED if self.sealed else pb.ENCLAVE_STATE_READY,
            attestation_document=document,
            protocols=list(self._sessions.protocols()) if self._sessions is not None else [],
            enclave_public_key=self._identity.public_key,
        )
        # Optional: an enclave without a pre-parameter pool simply does not report it.
        if self._preparams is not None:
            response.preparams_ready = int(self._preparams.preparams_ready())
            response.boot_sealer_kind = str(self._preparams.boot_sealer_kind())
        if self._gauges is not None:
            for name, value in self._gauges().items():
                response.gauges[name] = max(0, int(value))
        return response

    def _set_credentials(self, request: pb.SetAwsCredentials) -> pb.AwsCredentialsSet:
        if self._credentials is None:
            raise RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, "this enclave does not seal with KMS")
        changed = self._credentials.set(
            request.access_key_id, request.secret_access_key, request.session_token, request.expiration_unix
        )
        if changed:
            log.info("AWS credentials %s set, expiring at %d", request.access_key_id, request.expiration_unix)
        return pb.AwsCredentialsSet(access_key_id=request.access_key_id, expiration_unix=request.expiration_unix)

    def _pool(self) -> PreparamsPool:
        if self._preparams is None:
            raise RequestRejected(pb.ERROR_CODE_UNIMPLEMENTED, "this enclave keeps no pre-parameter pool")
        return self._preparams

    def _gate(self) -> UnsealGate:
        if self._unseal is None:
            raise RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, _NO_SHARES)
        return self._unseal

    def _checker(self) -> KeyChecker:
        if self._validator is None:
            raise RequestRejected(pb.ERROR_CODE_UNIMPLEMENTED, "this enclave cannot validate keys")
        return self._validator

    async def _session(self, request: pb.Request) -> pb.SessionUpdate:
        if self._sessions is None:
            raise RequestRejected(pb.ERROR_CODE_UNIMPLEMENTED, _UNIMPLEMENTED)
        if request.HasField("session_start"):
            start = request.session_start
            if start.result_recipient_key:
                if start.kind != pb.SESSION_KIND_SIGN:
                    raise RequestRejected(pb.ERROR_CODE_INVALID_ARGUMENT, "result_recipient_key is for signing only")
                hpke.load_public_key(start.result_recipient_key, "result_recipient_key")
            return await self._sessions.start(start)
        if request.HasField("session_deliver"):
            return await self._sessions.deliver(request.session_deliver)
        return await self._sessions.abort(request.session_abort)
