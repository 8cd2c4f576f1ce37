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

class KeyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_STATE_UNSPECIFIED: _ClassVar[KeyState]
    KEY_STATE_ACTIVE: _ClassVar[KeyState]
    KEY_STATE_RETIRED: _ClassVar[KeyState]

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
    ENCLAVE_STATE_UNAVAILABLE: _ClassVar[EnclaveState]
    ENCLAVE_STATE_SEALED: _ClassVar[EnclaveState]

class SignatureEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_ENCODING_UNSPECIFIED: _ClassVar[SignatureEncoding]
    SIGNATURE_ENCODING_RAW: _ClassVar[SignatureEncoding]
    SIGNATURE_ENCODING_DER: _ClassVar[SignatureEncoding]

class MessageHash(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_HASH_UNSPECIFIED: _ClassVar[MessageHash]
    MESSAGE_HASH_RAW: _ClassVar[MessageHash]
    MESSAGE_HASH_SHA256: _ClassVar[MessageHash]
    MESSAGE_HASH_KECCAK256: _ClassVar[MessageHash]
    MESSAGE_HASH_DOUBLE_SHA256: _ClassVar[MessageHash]
    MESSAGE_HASH_ETH_PERSONAL: _ClassVar[MessageHash]

class KeyValidity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_VALIDITY_UNSPECIFIED: _ClassVar[KeyValidity]
    KEY_VALIDITY_VALID: _ClassVar[KeyValidity]
    KEY_VALIDITY_FAILED_AUTHENTICATION: _ClassVar[KeyValidity]
    KEY_VALIDITY_WRONG_NODE: _ClassVar[KeyValidity]
    KEY_VALIDITY_INCONSISTENT_SHARE: _ClassVar[KeyValidity]
PROTOCOL_UNSPECIFIED: Protocol
PROTOCOL_GG20_SECP256K1: Protocol
PROTOCOL_FROST_ED25519: Protocol
PROTOCOL_FROST_SECP256K1: Protocol
PROTOCOL_FROST_SECP256K1_TR: Protocol
KEY_STATE_UNSPECIFIED: KeyState
KEY_STATE_ACTIVE: KeyState
KEY_STATE_RETIRED: KeyState
SESSION_STATE_UNSPECIFIED: SessionState
SESSION_STATE_RUNNING: SessionState
SESSION_STATE_DONE: SessionState
SESSION_STATE_FAILED: SessionState
ENCLAVE_STATE_UNSPECIFIED: EnclaveState
ENCLAVE_STATE_READY: EnclaveState
ENCLAVE_STATE_UNAVAILABLE: EnclaveState
ENCLAVE_STATE_SEALED: EnclaveState
SIGNATURE_ENCODING_UNSPECIFIED: SignatureEncoding
SIGNATURE_ENCODING_RAW: SignatureEncoding
SIGNATURE_ENCODING_DER: SignatureEncoding
MESSAGE_HASH_UNSPECIFIED: MessageHash
MESSAGE_HASH_RAW: MessageHash
MESSAGE_HASH_SHA256: MessageHash
MESSAGE_HASH_KECCAK256: MessageHash
MESSAGE_HASH_DOUBLE_SHA256: MessageHash
MESSAGE_HASH_ETH_PERSONAL: MessageHash
KEY_VALIDITY_UNSPECIFIED: KeyValidity
KEY_VALIDITY_VALID: KeyValidity
KEY_VALIDITY_FAILED_AUTHENTICATION: KeyValidity
KEY_VALIDITY_WRONG_NODE: KeyValidity
KEY_VALIDITY_INCONSISTENT_SHARE: KeyValidity

class ProtocolMessage(_message.Message):
    __slots__ = ("session_id", "sender", "recipient", "round", "seq", "payload", "hmac_key_id", "hmac")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    HMAC_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    HMAC_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    sender: str
    recipient: str
    round: int
    seq: int
    payload: bytes
    hmac_key_id: str
    hmac: bytes
    def __init__(self, session_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipient: _Optional[str] = ..., round: _Optional[int] = ..., seq: _Optional[int] = ..., payload: _Optional[bytes] = ..., hmac_key_id: _Optional[str] = ..., hmac: _Optional[bytes] = ...) -> None: ...

class SessionFailure(_message.Message):
    __slots__ = ("culprits", "reason")
    CULPRITS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    culprits: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    def __init__(self, culprits: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ...) -> None: ...

class DKGResult(_message.Message):
    __slots__ = ("key_id", "public_key", "chain_code", "protocol", "threshold", "party_ids", "predecessor_key_id")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    PREDECESSOR_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key: bytes
    chain_code: bytes
    protocol: Protocol
    threshold: int
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    predecessor_key_id: str
    def __init__(self, key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., chain_code: _Optional[bytes] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., threshold: _Optional[int] = ..., party_ids: _Optional[_Iterable[str]] = ..., predecessor_key_id: _Optional[str] = ...) -> None: ...

class SignResult(_message.Message):
    __slots__ = ("key_id", "signature", "recovery_id", "public_key", "presignature_id", "sealed_signature", "digest")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    SEALED_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    signature: bytes
    recovery_id: int
    public_key: bytes
    presignature_id: str
    sealed_signature: bytes
    digest: bytes
    def __init__(self, key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., recovery_id: _Optional[int] = ..., public_key: _Optional[bytes] = ..., presignature_id: _Optional[str] = ..., sealed_signature: _Optional[bytes] = ..., digest: _Optional[bytes] = ...) -> None: ...

class PresignResult(_message.Message):
    __slots__ = ("key_id", "presignature_id", "derivation_path", "presignature_ids")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    DERIVATION_PATH_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_IDS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    presignature_id: str
    derivation_path: _containers.RepeatedScalarFieldContainer[int]
    presignature_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key_id: _Optional[str] = ..., presignature_id: _Optional[str] = ..., derivation_path: _Optional[_Iterable[int]] = ..., presignature_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionResult(_message.Message):
    __slots__ = ("dkg", "sign", "presign")
    DKG_FIELD_NUMBER: _ClassVar[int]
    SIGN_FIELD_NUMBER: _ClassVar[int]
    PRESIGN_FIELD_NUMBER: _ClassVar[int]
    dkg: DKGResult
    sign: SignResult
    presign: PresignResult
    def __init__(self, dkg: _Optional[_Union[DKGResult, _Mapping]] = ..., sign: _Optional[_Union[SignResult, _Mapping]] = ..., presign: _Optional[_Union[PresignResult, _Mapping]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ("attestation_nonce",)
    ATTESTATION_NONCE_FIELD_NUMBER: _ClassVar[int]
    attestation_nonce: bytes
    def __init__(self, attestation_nonce: _Optional[bytes] = ...) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("version", "node_id", "enclave_state", "attestation_mode", "enclave_version", "attestation_document", "enclave_public_key")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENCLAVE_STATE_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_MODE_FIELD_NUMBER: _ClassVar[int]
    ENCLAVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    ENCLAVE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    version: str
    node_id: str
    enclave_state: EnclaveState
    attestation_mode: str
    enclave_version: str
    attestation_document: bytes
    enclave_public_key: bytes
    def __init__(self, version: _Optional[str] = ..., node_id: _Optional[str] = ..., enclave_state: _Optional[_Union[EnclaveState, str]] = ..., attestation_mode: _Optional[str] = ..., enclave_version: _Optional[str] = ..., attestation_document: _Optional[bytes] = ..., enclave_public_key: _Optional[bytes] = ...) -> None: ...

class StartDKGRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "threshold", "party_ids", "self_party_id", "messages")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol: Protocol
    threshold: int
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    messages: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    def __init__(self, session_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., threshold: _Optional[int] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ...) -> None: ...

class StartDKGResponse(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class GetDKGStatusRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetDKGStatusResponse(_message.Message):
    __slots__ = ("session_id", "state", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class StartRefreshRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "key_id", "party_ids", "self_party_id", "threshold", "messages")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol: Protocol
    key_id: str
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    threshold: int
    messages: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    def __init__(self, session_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., key_id: _Optional[str] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., threshold: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ...) -> None: ...

class StartRefreshResponse(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class GetRefreshStatusRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetRefreshStatusResponse(_message.Message):
    __slots__ = ("session_id", "state", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class StartReshareRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "key_id", "party_ids", "self_party_id", "threshold", "messages", "source_party_ids", "source_signers", "source_threshold", "source_public_key", "source_chain_code", "new_party_keys")
    class NewPartyKeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bytes
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SIGNERS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    NEW_PARTY_KEYS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol: Protocol
    key_id: str
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    threshold: int
    messages: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    source_party_ids: _containers.RepeatedScalarFieldContainer[str]
    source_signers: _containers.RepeatedScalarFieldContainer[str]
    source_threshold: int
    source_public_key: bytes
    source_chain_code: bytes
    new_party_keys: _containers.ScalarMap[str, bytes]
    def __init__(self, session_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., key_id: _Optional[str] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., threshold: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., source_party_ids: _Optional[_Iterable[str]] = ..., source_signers: _Optional[_Iterable[str]] = ..., source_threshold: _Optional[int] = ..., source_public_key: _Optional[bytes] = ..., source_chain_code: _Optional[bytes] = ..., new_party_keys: _Optional[_Mapping[str, bytes]] = ...) -> None: ...

class StartReshareResponse(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class GetReshareStatusRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetReshareStatusResponse(_message.Message):
    __slots__ = ("session_id", "state", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class StartRepairRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "key_id", "party_ids", "self_party_id", "threshold", "messages", "helpers", "repair_party_id", "public_key", "chain_code", "repair_party_key")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    HELPERS_FIELD_NUMBER: _ClassVar[int]
    REPAIR_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    REPAIR_PARTY_KEY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol: Protocol
    key_id: str
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    threshold: int
    messages: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    helpers: _containers.RepeatedScalarFieldContainer[str]
    repair_party_id: str
    public_key: bytes
    chain_code: bytes
    repair_party_key: bytes
    def __init__(self, session_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., key_id: _Optional[str] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., threshold: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., helpers: _Optional[_Iterable[str]] = ..., repair_party_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., chain_code: _Optional[bytes] = ..., repair_party_key: _Optional[bytes] = ...) -> None: ...

class StartRepairResponse(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class GetRepairStatusRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetRepairStatusResponse(_message.Message):
    __slots__ = ("session_id", "state", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    result: DKGResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., result: _Optional[_Union[DKGResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class StartSignRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "key_id", "message", "derivation_path", "taproot_merkle_root", "party_ids", "self_party_id", "presignature_id", "signature_encoding", "messages", "result_recipient_key", "message_hash")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DERIVATION_PATH_FIELD_NUMBER: _ClassVar[int]
    TAPROOT_MERKLE_ROOT_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ENCODING_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RESULT_RECIPIENT_KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol: Protocol
    key_id: str
    message: bytes
    derivation_path: _containers.RepeatedScalarFieldContainer[int]
    taproot_merkle_root: bytes
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    presignature_id: str
    signature_encoding: SignatureEncoding
    messages: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result_recipient_key: bytes
    message_hash: MessageHash
    def __init__(self, session_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., key_id: _Optional[str] = ..., message: _Optional[bytes] = ..., derivation_path: _Optional[_Iterable[int]] = ..., taproot_merkle_root: _Optional[bytes] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., presignature_id: _Optional[str] = ..., signature_encoding: _Optional[_Union[SignatureEncoding, str]] = ..., messages: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result_recipient_key: _Optional[bytes] = ..., message_hash: _Optional[_Union[MessageHash, str]] = ...) -> None: ...

class StartSignResponse(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result: SignResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result: _Optional[_Union[SignResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class GetSignStatusRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSignStatusResponse(_message.Message):
    __slots__ = ("session_id", "state", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    result: SignResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., result: _Optional[_Union[SignResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class StartPresignRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "key_id", "party_ids", "self_party_id", "messages", "derivation_path", "count")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    DERIVATION_PATH_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    protocol: Protocol
    key_id: str
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    messages: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    derivation_path: _containers.RepeatedScalarFieldContainer[int]
    count: int
    def __init__(self, session_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., key_id: _Optional[str] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., derivation_path: _Optional[_Iterable[int]] = ..., count: _Optional[int] = ...) -> None: ...

class StartPresignResponse(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result: PresignResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result: _Optional[_Union[PresignResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class GetPresignStatusRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetPresignStatusResponse(_message.Message):
    __slots__ = ("session_id", "state", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    result: PresignResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., result: _Optional[_Union[PresignResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class SubmitProtocolMessageRequest(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ...) -> None: ...

class SubmitProtocolMessageResponse(_message.Message):
    __slots__ = ("session_id", "state", "outgoing", "result", "failure")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    state: SessionState
    outgoing: _containers.RepeatedCompositeFieldContainer[ProtocolMessage]
    result: SessionResult
    failure: SessionFailure
    def __init__(self, session_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., outgoing: _Optional[_Iterable[_Union[ProtocolMessage, _Mapping]]] = ..., result: _Optional[_Union[SessionResult, _Mapping]] = ..., failure: _Optional[_Union[SessionFailure, _Mapping]] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("call_id", "start_dkg", "get_dkg_status", "start_sign", "get_sign_status", "start_presign", "get_presign_status", "submit_protocol_message", "start_refresh", "get_refresh_status", "start_reshare", "get_reshare_status", "start_repair", "get_repair_status", "get_key", "list_keys", "retire_key")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    START_DKG_FIELD_NUMBER: _ClassVar[int]
    GET_DKG_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_SIGN_FIELD_NUMBER: _ClassVar[int]
    GET_SIGN_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_PRESIGN_FIELD_NUMBER: _ClassVar[int]
    GET_PRESIGN_STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_PROTOCOL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    START_REFRESH_FIELD_NUMBER: _ClassVar[int]
    GET_REFRESH_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_RESHARE_FIELD_NUMBER: _ClassVar[int]
    GET_RESHARE_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_REPAIR_FIELD_NUMBER: _ClassVar[int]
    GET_REPAIR_STATUS_FIELD_NUMBER: _ClassVar[int]
    GET_KEY_FIELD_NUMBER: _ClassVar[int]
    LIST_KEYS_FIELD_NUMBER: _ClassVar[int]
    RETIRE_KEY_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    start_dkg: StartDKGRequest
    get_dkg_status: GetDKGStatusRequest
    start_sign: StartSignRequest
    get_sign_status: GetSignStatusRequest
    start_presign: StartPresignRequest
    get_presign_status: GetPresignStatusRequest
    submit_protocol_message: SubmitProtocolMessageRequest
    start_refresh: StartRefreshRequest
    get_refresh_status: GetRefreshStatusRequest
    start_reshare: StartReshareRequest
    get_reshare_status: GetReshareStatusRequest
    start_repair: StartRepairRequest
    get_repair_status: GetRepairStatusRequest
    get_key: GetKeyRequest
    list_keys: ListKeysRequest
    retire_key: RetireKeyRequest
    def __init__(self, call_id: _Optional[int] = ..., start_dkg: _Optional[_Union[StartDKGRequest, _Mapping]] = ..., get_dkg_status: _Optional[_Union[GetDKGStatusRequest, _Mapping]] = ..., start_sign: _Optional[_Union[StartSignRequest, _Mapping]] = ..., get_sign_status: _Optional[_Union[GetSignStatusRequest, _Mapping]] = ..., start_presign: _Optional[_Union[StartPresignRequest, _Mapping]] = ..., get_presign_status: _Optional[_Union[GetPresignStatusRequest, _Mapping]] = ..., submit_protocol_message: _Optional[_Union[SubmitProtocolMessageRequest, _Mapping]] = ..., start_refresh: _Optional[_Union[StartRefreshRequest, _Mapping]] = ..., get_refresh_status: _Optional[_Union[GetRefreshStatusRequest, _Mapping]] = ..., start_reshare: _Optional[_Union[StartReshareRequest, _Mapping]] = ..., get_reshare_status: _Optional[_Union[GetReshareStatusRequest, _Mapping]] = ..., start_repair: _Optional[_Union[StartRepairRequest, _Mapping]] = ..., get_repair_status: _Optional[_Union[GetRepairStatusRequest, _Mapping]] = ..., get_key: _Optional[_Union[GetKeyRequest, _Mapping]] = ..., list_keys: _Optional[_Union[ListKeysRequest, _Mapping]] = ..., retire_key: _Optional[_Union[RetireKeyRequest, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("call_id", "code", "message", "start_dkg", "get_dkg_status", "start_sign", "get_sign_status", "start_presign", "get_presign_status", "submit_protocol_message", "start_refresh", "get_refresh_status", "start_reshare", "get_reshare_status", "start_repair", "get_repair_status", "get_key", "list_keys", "retire_key")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    START_DKG_FIELD_NUMBER: _ClassVar[int]
    GET_DKG_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_SIGN_FIELD_NUMBER: _ClassVar[int]
    GET_SIGN_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_PRESIGN_FIELD_NUMBER: _ClassVar[int]
    GET_PRESIGN_STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_PROTOCOL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    START_REFRESH_FIELD_NUMBER: _ClassVar[int]
    GET_REFRESH_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_RESHARE_FIELD_NUMBER: _ClassVar[int]
    GET_RESHARE_STATUS_FIELD_NUMBER: _ClassVar[int]
    START_REPAIR_FIELD_NUMBER: _ClassVar[int]
    GET_REPAIR_STATUS_FIELD_NUMBER: _ClassVar[int]
    GET_KEY_FIELD_NUMBER: _ClassVar[int]
    LIST_KEYS_FIELD_NUMBER: _ClassVar[int]
    RETIRE_KEY_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    code: int
    message: str
    start_dkg: StartDKGResponse
    get_dkg_status: GetDKGStatusResponse
    start_sign: StartSignResponse
    get_sign_status: GetSignStatusResponse
    start_presign: StartPresignResponse
    get_presign_status: GetPresignStatusResponse
    submit_protocol_message: SubmitProtocolMessageResponse
    start_refresh: StartRefreshResponse
    get_refresh_status: GetRefreshStatusResponse
    start_reshare: StartReshareResponse
    get_reshare_status: GetReshareStatusResponse
    start_repair: StartRepairResponse
    get_repair_status: GetRepairStatusResponse
    get_key: GetKeyResponse
    list_keys: ListKeysResponse
    retire_key: RetireKeyResponse
    def __init__(self, call_id: _Optional[int] = ..., code: _Optional[int] = ..., message: _Optional[str] = ..., start_dkg: _Optional[_Union[StartDKGResponse, _Mapping]] = ..., get_dkg_status: _Optional[_Union[GetDKGStatusResponse, _Mapping]] = ..., start_sign: _Optional[_Union[StartSignResponse, _Mapping]] = ..., get_sign_status: _Optional[_Union[GetSignStatusResponse, _Mapping]] = ..., start_presign: _Optional[_Union[StartPresignResponse, _Mapping]] = ..., get_presign_status: _Optional[_Union[GetPresignStatusResponse, _Mapping]] = ..., submit_protocol_message: _Optional[_Union[SubmitProtocolMessageResponse, _Mapping]] = ..., start_refresh: _Optional[_Union[StartRefreshResponse, _Mapping]] = ..., get_refresh_status: _Optional[_Union[GetRefreshStatusResponse, _Mapping]] = ..., start_reshare: _Optional[_Union[StartReshareResponse, _Mapping]] = ..., get_reshare_status: _Optional[_Union[GetReshareStatusResponse, _Mapping]] = ..., start_repair: _Optional[_Union[StartRepairResponse, _Mapping]] = ..., get_repair_status: _Optional[_Union[GetRepairStatusResponse, _Mapping]] = ..., get_key: _Optional[_Union[GetKeyResponse, _Mapping]] = ..., list_keys: _Optional[_Union[ListKeysResponse, _Mapping]] = ..., retire_key: _Optional[_Union[RetireKeyResponse, _Mapping]] = ...) -> None: ...

class ValidateKeyRequest(_message.Message):
    __slots__ = ("key_id", "self_party_id")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    self_party_id: str
    def __init__(self, key_id: _Optional[str] = ..., self_party_id: _Optional[str] = ...) -> None: ...

class ValidateKeyResponse(_message.Message):
    __slots__ = ("key_id", "validity", "reason", "protocol", "public_key", "party_id")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    validity: KeyValidity
    reason: str
    protocol: Protocol
    public_key: bytes
    party_id: str
    def __init__(self, key_id: _Optional[str] = ..., validity: _Optional[_Union[KeyValidity, str]] = ..., reason: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., public_key: _Optional[bytes] = ..., party_id: _Optional[str] = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("key_id", "protocol", "public_key", "chain_code", "threshold", "party_ids", "self_party_id", "state", "created_at_unix_ms", "predecessor_key_id", "retired_at_unix_ms")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTY_IDS_FIELD_NUMBER: _ClassVar[int]
    SELF_PARTY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PREDECESSOR_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RETIRED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    protocol: Protocol
    public_key: bytes
    chain_code: bytes
    threshold: int
    party_ids: _containers.RepeatedScalarFieldContainer[str]
    self_party_id: str
    state: KeyState
    created_at_unix_ms: int
    predecessor_key_id: str
    retired_at_unix_ms: int
    def __init__(self, key_id: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., public_key: _Optional[bytes] = ..., chain_code: _Optional[bytes] = ..., threshold: _Optional[int] = ..., party_ids: _Optional[_Iterable[str]] = ..., self_party_id: _Optional[str] = ..., state: _Optional[_Union[KeyState, str]] = ..., created_at_unix_ms: _Optional[int] = ..., predecessor_key_id: _Optional[str] = ..., retired_at_unix_ms: _Optional[int] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class GetKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "protocol", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    protocol: Protocol
    state: KeyState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., protocol: _Optional[_Union[Protocol, str]] = ..., state: _Optional[_Union[KeyState, str]] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RetireKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RetireKeyResponse(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: KeyInfo
    def __init__(self, key: _Optional[_Union[KeyInfo, _Mapping]] = ...) -> None: ...
