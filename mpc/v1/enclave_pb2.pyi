from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_UNSPECIFIED: _ClassVar[Protocol]
    PROTOCOL_GG20_SECP256K1: _ClassVar[Protocol]
    PROTOCOL_FROST_ED25519: _ClassVar[Protocol]
    PROTOCOL_FROST_SECP256K1: _ClassVar[Protocol]
    PROTOCOL_FROST_SECP256K1_TR: _ClassVar[Protocol]

class SessionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_KIND_UNSPECIFIED: _ClassVar[SessionKind]
    SESSION_KIND_DKG: _ClassVar[SessionKind]
    SESSION_KIND_SIGN: _ClassVar[SessionKind]
    SESSION_KIND_PRESIGN: _ClassVar[SessionKind]
    SESSION_KIND_REFRESH: _ClassVar[SessionKind]
    SESSION_KIND_RESHARE: _ClassVar[SessionKind]
    SESSION_KIND_REPAIR: _ClassVar[SessionKind]

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATE_UNSPECIFIED: _ClassVar[SessionState]
    SESSION_STATE_RUNNING: _ClassVar[SessionState]
    SESSION_STATE_DONE: _ClassVar[SessionState]
    SESSION_STATE_FAILED: _ClassVar[SessionState]

class EnclaveState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCLAVE_STATE_UNSPECIFIED: _ClassVar[EnclaveState]
    ENCLAVE_STATE_READY: _ClassVar[EnclaveState]
    ENCLAVE_STATE_SEALED: _ClassVar[EnclaveState]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_ARGUMENT: _ClassVar[ErrorCode]
    ERROR_CODE_UNIMPLEMENTED: _ClassVar[ErrorCode]
    ERROR_CODE_NOT_FOUND: _ClassVar[ErrorCode]
    ERROR_CODE_ALREADY_EXISTS: _ClassVar[ErrorCode]
    ERROR_CODE_FAILED_PRECONDITION: _ClassVar[ErrorCode]
    ERROR_CODE_RESOURCE_EXHAUSTED: _ClassVar[ErrorCode]
    ERROR_CODE_PERMISSION_DENIED: _ClassVar[ErrorCode]
    ERROR_CODE_SEALED_BLOB_INVALID: _ClassVar[ErrorCode]
    ERROR_CODE_INTERNAL: _ClassVar[ErrorCode]
    ERROR_CODE_UNAVAILABLE: _ClassVar[ErrorCode]
    ERROR_CODE_SEALED_IN_EARLIER_BOOT: _ClassVar[ErrorCode]

class SealedBlobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEALED_BLOB_KIND_UNSPECIFIED: _ClassVar[SealedBlobKind]
    SEALED_BLOB_KIND_KEY_SHARE: _ClassVar[SealedBlobKind]
    SEALED_BLOB_KIND_PRESIGNATURE: _ClassVar[SealedBlobKind]
    SEALED_BLOB_KIND_PREPARAMS: _ClassVar[SealedBlobKind]
    SEALED_BLOB_KIND_FROST_NONCE: _ClassVar[SealedBlobKind]

class MessageHash(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_HASH_UNSPECIFIED: _ClassVar[MessageHash]
    MESSAGE_HASH_RAW: _ClassVar[MessageHash]
    MESSAGE_HASH_SHA256: _ClassVar[MessageHash]
    MESSAGE_HASH_KECCAK256: _ClassVar[MessageHash]
    MESSAGE_HASH_DOUBLE_SHA256: _ClassVar[MessageHash]
    MESSAGE_HASH_ETH_PERSONAL: _ClassVar[MessageHash]

class KeyVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_VERDICT_UNSPECIFIED: _ClassVar[KeyVerdict]
    KEY_VERDICT_VALID: _ClassVar[KeyVerdict]
    KEY_VERDICT_FAILED_AUTHENTICATION: _ClassVar[KeyVerdict]
    KEY_VERDICT_WRONG_NODE: _ClassVar[KeyVerdict]
    KEY_VERDICT_INCONSISTENT_SHARE: _ClassVar[KeyVerdict]
PROTOCOL_UNSPECIFIED: Protocol
PROTOCOL_GG20_SECP256K1: Protocol
PROTOCOL_FROST_ED25519: Protocol
PROTOCOL_FROST_SECP256K1: Protocol
PROTOCOL_FROST_SECP256K1_TR: Protocol
SESSION_KIND_UNSPECIFIED: SessionKind
SESSION_KIND_DKG: SessionKind
SESSION_KIND_SIGN: SessionKind
SESSION_KIND_PRESIGN: SessionKind
SESSION_KIND_REFRESH: SessionKind
SESSION_KIND_RESHARE: SessionKind
SESSION_KIND_REPAIR: SessionKind
SESSION_STATE_UNSPECIFIED: SessionState
SESSION_STATE_RUNNING: SessionState
SESSION_STATE_DONE: SessionState
SESSION_STATE_FAILED: SessionState
ENCLAVE_STATE_UNSPECIFIED: EnclaveState
ENCLAVE_STATE_READY: EnclaveState
ENCLAVE_STATE_SEALED: EnclaveState
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_INVALID_ARGUMENT: ErrorCode
ERROR_CODE_UNIMPLEMENTED: ErrorCode
ERROR_CODE_NOT_FOUND: ErrorCode
ERROR_CODE_ALREADY_EXISTS: ErrorCode
ERROR_CODE_FAILED_PRECONDITION: ErrorCode
ERROR_CODE_RESOURCE_EXHAUSTED: ErrorCode
ERROR_CODE_PERMISSION_DENIED: ErrorCode
ERROR_CODE_SEALED_BLOB_INVALID: ErrorCode
ERROR_CODE_INTERNAL: ErrorCode
ERROR_CODE_UNAVAILABLE: ErrorCode
ERROR_CODE_SEALED_IN_EARLIER_BOOT: ErrorCode
SEALED_BLOB_KIND_UNSPECIFIED: SealedBlobKind
SEALED_BLOB_KIND_KEY_SHARE: SealedBlobKind
SEALED_BLOB_KIND_PRESIGNATURE: SealedBlobKind
SEALED_BLOB_KIND_PREPARAMS: SealedBlobKind
SEALED_BLOB_KIND_FROST_NONCE: SealedBlobKind
MESSAGE_HASH_UNSPECIFIED: MessageHash
MESSAGE_HASH_RAW: MessageHash
MESSAGE_HASH_SHA256: MessageHash
MESSAGE_HASH_KECCAK256: MessageHash
MESSAGE_HASH_DOUBLE_SHA256: MessageHash
MESSAGE_HASH_ETH_PERSONAL: MessageHash
KEY_VERDICT_UNSPECIFIED: KeyVerdict
KEY_VERDICT_VALID: KeyVerdict
KEY_VERDICT_FAILED_AUTHENTICATION: KeyVerdict
KEY_VERDICT_WRONG_NODE: KeyVerdict
KEY_VERDICT_INCONSISTENT_SHARE: KeyVerdict

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("request_id", "ping", "info", "session_start", "session_deliver", "session_abort", "set_aws_credentials", "preparams_export", "preparams_import", "unseal", "validate_key")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    SESSION_START_FIELD_NUMBER: _ClassVar[int]
    SESSION_DELIVER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ABORT_FIELD_NUMBER: _ClassVar[int]
    SET_AWS_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    PREPARAMS_EXPORT_FIELD_NUMBER: _ClassVar[int]
    PREPARAMS_IMPORT_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_KEY_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    ping: PingRequest
    info: InfoRequest
    session_start: SessionStart
    session_deliver: SessionDeliver
    session_abort: SessionAbort
    set_aws_credentials: SetAwsCredentials
    preparams_export: PreparamsExport
    preparams_import: PreparamsImport
    unseal: UnsealRequest
    validate_key: ValidateKeyRequest
    def __init__(self, request_id: _Optional[int] = ..., ping: _Optional[_Union[PingRequest, _Mapping]] = ..., info: _Optional[_Union[InfoRequest, _Mapping]] = ..., session_start: _Optional[_Union[SessionStart, _Mapping]] = ..., session_deliver: _Optional[_Union[SessionDeliver, _Mapping]] = ..., session_abort: _Optional[_Union[SessionAbort, _Mapping]] = ..., set_aws_credentials: _Optional[_Union[SetAwsCredentials, _Mapping]] = ..., preparams_export: _Optional[_Union[PreparamsExport, _Mapping]] = ..., preparams_import: _Optional[_Union[PreparamsImport, _Mapping]] = ..., unseal: _Optional[_Union[UnsealRequest, _Mapping]] = ..., validate_key: _Optional[_Union[ValidateKeyRequest, _Mapping]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("request_id", "error", "ping", "info", "session_update", "aws_credentials_set", "preparams_exported", "preparams_imported", "unseal_status", "key_validation")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    SESSION_UPDATE_FIELD_NUMBER: _ClassVar[int]
    AWS_CREDENTIALS_SET_FIELD_NUMBER: _ClassVar[int]
    PREPARAMS_EXPORTED_FIELD_NUMBER: _ClassVar[int]
    PREPARAMS_IMPORTED_FIELD_NUMBER: _ClassVar[int]
    UNSEAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    error: Error
    ping: PingResponse
    info: InfoResponse
    session_update: SessionUpdate
    aws_credentials_set: AwsCredentialsSet
    preparams_exported: PreparamsExported
    preparams_imported: PreparamsImported
    unseal_status: UnsealStatus
    key_validation: KeyValidation
    def __init__(self, request_id: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., ping: _Optional[_Union[PingResponse, _Mapping]] = ..., info: _Optional[_Union[InfoResponse, _Mapping]] = ..., session_update: _Optional[_Union[SessionUpdate, _Mapping]] = ..., aws_credentials_set: _Optional[_Union[AwsCredentialsSet, _Mapping]] = ..., preparams_exported: _Optional[_Union[PreparamsExported, _Mapping]] = ..., preparams_imported: _Optional[_Union[PreparamsImported, _Mapping]] = ..., unseal_status: _Optional[_Union[UnsealStatus, _Mapping]] = ..., key_validation: _Optional[_Union[KeyValidation, _Mapping]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("sealed",)
    SEALED_FIELD_NUMBER: _ClassVar[int]
    sealed: bool
    def __init__(self, sealed: _Optional[bool] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ("attestation_nonce",)
    ATTESTATION_NONCE_FIELD_NUMBER: _ClassVar[int]
    attestation_nonce: bytes
    def __init__(self, attestation_nonce: _Optional[bytes] = ...) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("version", "attestation_mode", "state", "attestation_document", "protocols", "preparams_ready", "enclave_public_key", "boot_sealer_kind", "gauges")
    class GaugesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_MODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    PREPARAMS_READY_FIELD_NUMBER: _ClassVar[int]
    ENCLAVE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    BOOT_SEALER_KIND_FIELD_NUMBER: _ClassVar[int]
    GAUGES_FIELD_NUMBER: _ClassVar[int]
    version: str
    attestation_mode: str
    state: EnclaveState
    attestation_document: bytes
    protocols: _containers.RepeatedScalarFieldContainer[Protocol]
    preparams_ready: int
    enclave_public_key: bytes
    boot_sealer_kind: str
    gauges: _containers.ScalarMap[str, int]
    def __init__(self, version: _Optional[str] = ..., attestation_mode: _Optional[str] = ..., state: _Optional[_Union[EnclaveState, str]] = ..., attestation_document: _Optional[bytes] = ..., protocols: _Optional[_Iterable[_Union[Protocol, str]]] = ..., preparams_ready: _Optional[int] = ..., enclave_public_key: _Optional[bytes] = ..., boot_sealer_kind: _Optional[str] = ..., gauges: _Optional[_Mapping[str, int]] = ...) -> None: ...

class SetAwsCredentials(_message.Message):
    __slots__ = ("access_key_id", "secret_access_key", "session_token", "expiration_unix")
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_UNIX_FIELD_NUMBER: _ClassVar[int]
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration_unix: int
    def __init__(self, access_key_id: _Optional[str] = ..., secret_access_key: _Optional[str] = ..., session_token: _Optional[str] = ..., expiration_unix: _Optional[int] = ...) -> None: ...

class AwsCredentialsSet(_message.Message):
    __slots__ = ("access_key_id", "expiration_unix")
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_UNIX_FIELD_NUMBER: _ClassVar[int]
    access_key_id: str
    expiration_unix: int
    def __init__(self, access_key_id: _Optional[str] = ..., expiration_unix: _Optional[int] = ...) -> None: ...

class PreparamsExport(_message.Message):
    __slots__ = ("max_count",)
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    max_count: int
    def __init__(self, max_count: _Optional[int] = ...) -> None: ...

class PreparamsExported(_message.Message):
    __slots__ = ("sealed", "consumed_ids", "ready", "pool_size")
    SEALED_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_IDS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    sealed: _containers.RepeatedCompositeFieldContainer[SealedBlob]
    consumed_ids: _containers.RepeatedScalarFieldContainer[str]
    ready: int
    pool_size: int
    def __init__(self, sealed: _Optional[_Iterable[_Union[SealedBlob, _Mapping]]] = ..., consumed_ids: _Optional[_Iterable[str]] = ..., ready: _Optional[int] = ..., pool_size: _Optional[int] = ...) -> None: ...

class PreparamsImport(_message.Message):
    __slots__ = ("sealed",)
    SEALED_FIELD_NUMBER: _ClassVar[int]
    sealed: _containers.RepeatedCompositeFieldContainer[SealedBlob]
    def __init__(self, sealed: _Optional[_Iterable[_Union[SealedBlob, _Mapping]]] = ...) -> None: ...

class PreparamsRefusal(_message.Message):
    __slots__ = ("id", "code", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    code: ErrorCode
    message: str
    def __init__(self, id: _Optional[str] = ..., code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ...) -> None: ...

class PreparamsImported(_message.Message):
    __slots__ = ("imported_ids", "refused", "ready")
    IMPORTED_IDS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    imported_ids: _containers.RepeatedScalarFieldContainer[str]
    refused: _containers.RepeatedCompositeFieldContainer[PreparamsRefusal]
    ready: int
    def __init__(self, imported_ids: _Optional[_Iterable[str]] = ..., refused: _Optional[_Iterable[_Union[PreparamsRefusal, _Mapping]]] = ..., ready: _Optional[int] = ...) -> None: ...

class SealedBlob(_message.Message):
    __slots__ = ("kind", "id", "data", "sealer_kind")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEALER_KIND_FIELD_NUMBER: _ClassVar[int]
    kind: SealedBlobKind
    id: str
    data: bytes
    sealer_kind: str
    def __init__(self, kind: _Optional[_Union[SealedBlobKind, str]] = ..., id: _Optional[str] = ..., data: _Optional[bytes] = ..., sealer_kind: _Optional[str] = ...) -> None: ...

class EnclaveMessage(_message.Message):
    __slots__ = ("sender", "recipient", "round", "payload")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    sender: str
    recipient: str
    round: int
    payload: bytes
    def __init__(self, sender: _Optional[str] = ..., recipient: _Optional[str] = ..., round: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class PolicyApproval(_message.Message):
    __slots__ = ("version", "expires_at", "signature")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    version: int
    expires_at: int
    signature: bytes
    def __init__(self, version: _Optional[int] = ..., expires_at: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SessionStart(_message.Message):
    __slots__ = ("session_id", "protocol", "kind", "party_ids", "self_party_id", "threshold", "sealed_blobs", "message", "derivation_path", "taproot_merkle_root", "presignature_id", "key_id", "timeout_ms", "policy_approval", "messages", "result_recipient_key", "message_hash", "presign_count", "source_party_ids", "source_signers", "source_threshold", "source_public_key", "repair_party_id", "source_chain_code", "new_party_keys")
    class NewPartyKeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SEALED_BLOBS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DERIVATION_PATH_FIELD_NUMBER: _ClassVar[int]
    TAPROOT_MERKLE_ROOT_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    POLICY_APPROVAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RESULT_RECIPIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    PRESIGN_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SIGNERS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    REPAIR_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    NEW_PARTY_KEYS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol: Protocol
    kind: SessionKind
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    threshold: int
    sealed_blobs: _containers.RepeatedCompositeFieldContainer[SealedBlob]
    message: bytes
    derivation_path: _containers.RepeatedScalarFieldContainer[int]
    taproot_merkle_root: bytes
    presignature_id: str
    key_id: str
    timeout_ms: int
    policy_approval: PolicyApproval
    messages: _containers.RepeatedCompositeFieldContainer[EnclaveMessage]
    result_recipient_key: bytes
    message_hash: MessageHash
    presign_count: int
    source_party_ids: _containers.RepeatedScalarFieldContainer[str]
    source_signers: _containers.RepeatedScalarFieldContainer[str]
    source_threshold: int
    source_public_key: bytes
    repair_party_id: str
    source_chain_code: bytes
    new_party_keys: _containers.ScalarMap[str, bytes]
    def __init__(self, session_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., kind: _Optional[_Union[SessionKind, str]] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., threshold: _Optional[int] = ..., sealed_blobs: _Optional[_Iterable[_Union[SealedBlob, _Mapping]]] = ..., message: _Optional[bytes] = ..., derivation_path: _Optional[_Iterable[int]] = ..., taproot_merkle_root: _Optional[bytes] = ..., presignature_id: _Optional[str] = ..., key_id: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., policy_approval: _Optional[_Union[PolicyApproval, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[EnclaveMessage, _Mapping]]] = ..., result_recipient_key: _Optional[bytes] = ..., message_hash: _Optional[_Union[MessageHash, str]] = ..., presign_count: _Optional[int] = ..., source_party_ids: _Optional[_Iterable[str]] = ..., source_signers: _Optional[_Iterable[str]] = ..., source_threshold: _Optional[int] = ..., source_public_key: _Optional[bytes] = ..., repair_party_id: _Optional[str] = ..., source_chain_code: _Optional[bytes] = ..., new_party_keys: _Optional[_Mapping[str, bytes]] = ...) -> None: ...

class SessionDeliver(_message.Message):
    __slots__ = ("session_id", "messages")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    messages: _containers.RepeatedCompositeFieldContainer[EnclaveMessage]
    def __init__(self, session_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[EnclaveMessage, _Mapping]]] = ...) -> None: ...

class SessionAbort(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SessionResult(_message.Message):
    __slots__ = ("key_id", "public_key", "chain_code", "signature", "recovery_id", "sealed_share", "sealed_presignatures", "presignature_id", "sealed_signature", "digest", "predecessor_key_id")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_ID_FIELD_NUMBER: _ClassVar[int]
    SEALED_SHARE_FIELD_NUMBER: _ClassVar[int]
    SEALED_PRESIGNATURES_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    SEALED_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PREDECESSOR_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key: bytes
    chain_code: bytes
    signature: bytes
    recovery_id: int
    sealed_share: SealedBlob
    sealed_presignatures: _containers.RepeatedCompositeFieldContainer[SealedBlob]
    presignature_id: str
    sealed_signature: bytes
    digest: bytes
    predecessor_key_id: str
    def __init__(self, key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., chain_code: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., recovery_id: _Optional[int] = ..., sealed_share: _Optional[_Union[SealedBlob, _Mapping]] = ..., sealed_presignatures: _Optional[_Iterable[_Union[SealedBlob, _Mapping]]] = ..., presignature_id: _Optional[str] = ..., sealed_signature: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., predecessor_key_id: _Optional[str] = ...) -> None: ...

class SessionUpdate(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "culprits", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CULPRITS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[EnclaveMessage]
    result: SessionResult
    culprits: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[EnclaveMessage, _Mapping]]] = ..., result: _Optional[_Union[SessionResult, _Mapping]] = ..., culprits: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class ChannelKeyOffer(_message.Message):
    __slots__ = ("attestation_mode", "attestation_document", "enclave_public_key")
    ATTESTATION_MODE_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    ENCLAVE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    attestation_mode: str
    attestation_document: bytes
    enclave_public_key: bytes
    def __init__(self, attestation_mode: _Optional[str] = ..., attestation_document: _Optional[bytes] = ..., enclave_public_key: _Optional[bytes] = ...) -> None: ...

class ChannelKeyDelivery(_message.Message):
    __slots__ = ("ephemeral_public_key", "ciphertext")
    EPHEMERAL_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    ephemeral_public_key: bytes
    ciphertext: bytes
    def __init__(self, ephemeral_public_key: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class UnsealRequest(_message.Message):
    __slots__ = ("status", "init", "share", "rekey", "rekey_verify", "rekey_cancel")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    REKEY_FIELD_NUMBER: _ClassVar[int]
    REKEY_VERIFY_FIELD_NUMBER: _ClassVar[int]
    REKEY_CANCEL_FIELD_NUMBER: _ClassVar[int]
    status: UnsealStatusRequest
    init: UnsealInit
    share: UnsealShare
    rekey: Rekey
    rekey_verify: RekeyVerify
    rekey_cancel: RekeyCancel
    def __init__(self, status: _Optional[_Union[UnsealStatusRequest, _Mapping]] = ..., init: _Optional[_Union[UnsealInit, _Mapping]] = ..., share: _Optional[_Union[UnsealShare, _Mapping]] = ..., rekey: _Optional[_Union[Rekey, _Mapping]] = ..., rekey_verify: _Optional[_Union[RekeyVerify, _Mapping]] = ..., rekey_cancel: _Optional[_Union[RekeyCancel, _Mapping]] = ...) -> None: ...

class UnsealStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnsealInit(_message.Message):
    __slots__ = ("shares", "threshold", "recipient_public_key")
    SHARES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    shares: int
    threshold: int
    recipient_public_key: bytes
    def __init__(self, shares: _Optional[int] = ..., threshold: _Optional[int] = ..., recipient_public_key: _Optional[bytes] = ...) -> None: ...

class UnsealShare(_message.Message):
    __slots__ = ("encrypted_share",)
    ENCRYPTED_SHARE_FIELD_NUMBER: _ClassVar[int]
    encrypted_share: bytes
    def __init__(self, encrypted_share: _Optional[bytes] = ...) -> None: ...

class Rekey(_message.Message):
    __slots__ = ("encrypted_shares", "shares", "threshold", "recipient_public_key")
    ENCRYPTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    encrypted_shares: _containers.RepeatedScalarFieldContainer[bytes]
    shares: int
    threshold: int
    recipient_public_key: bytes
    def __init__(self, encrypted_shares: _Optional[_Iterable[bytes]] = ..., shares: _Optional[int] = ..., threshold: _Optional[int] = ..., recipient_public_key: _Optional[bytes] = ...) -> None: ...

class RekeyVerify(_message.Message):
    __slots__ = ("encrypted_shares",)
    ENCRYPTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    encrypted_shares: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, encrypted_shares: _Optional[_Iterable[bytes]] = ...) -> None: ...

class RekeyCancel(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ShareSet(_message.Message):
    __slots__ = ("set_id", "threshold", "shares", "entered")
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    ENTERED_FIELD_NUMBER: _ClassVar[int]
    set_id: str
    threshold: int
    shares: int
    entered: int
    def __init__(self, set_id: _Optional[str] = ..., threshold: _Optional[int] = ..., shares: _Optional[int] = ..., entered: _Optional[int] = ...) -> None: ...

class NewShares(_message.Message):
    __slots__ = ("set_id", "threshold", "encrypted_shares")
    SET_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    set_id: str
    threshold: int
    encrypted_shares: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, set_id: _Optional[str] = ..., threshold: _Optional[int] = ..., encrypted_shares: _Optional[_Iterable[bytes]] = ...) -> None: ...

class UnsealStatus(_message.Message):
    __slots__ = ("initialized", "sealed", "current", "pending", "new_shares", "message")
    INITIALIZED_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    NEW_SHARES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    initialized: bool
    sealed: bool
    current: ShareSet
    pending: ShareSet
    new_shares: NewShares
    message: str
    def __init__(self, initialized: _Optional[bool] = ..., sealed: _Optional[bool] = ..., current: _Optional[_Union[ShareSet, _Mapping]] = ..., pending: _Optional[_Union[ShareSet, _Mapping]] = ..., new_shares: _Optional[_Union[NewShares, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class ValidateKeyRequest(_message.Message):
    __slots__ = ("sealed_share", "protocol", "public_key", "expected_party_id")
    SEALED_SHARE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    sealed_share: SealedBlob
    protocol: Protocol
    public_key: bytes
    expected_party_id: str
    def __init__(self, sealed_share: _Optional[_Union[SealedBlob, _Mapping]] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., public_key: _Optional[bytes] = ..., expected_party_id: _Optional[str] = ...) -> None: ...

class KeyValidation(_message.Message):
    __slots__ = ("verdict", "reason", "party_id", "threshold", "party_ids")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    verdict: KeyVerdict
    reason: str
    party_id: str
    threshold: int
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, verdict: _Optional[_Union[KeyVerdict, str]] = ..., reason: _Optional[str] = ..., party_id: _Optional[str] = ..., threshold: _Optional[int] = ..., party_ids: _Optional[_Iterable[str]] = ...) -> None: ...
