"""Public API messages <-> enclave wire messages, with all input validation of the public API.

Everything a caller sends is checked here before anything reaches the enclave or the session
registry; failures raise InvalidArgument with a message that names the field.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.errors import InvalidArgument

SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PARTY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
KEY_ID = re.compile(r"[0-9a-f]{64}")
MAX_PARTIES = 32
MAX_DERIVATION_DEPTH = 16
MAX_FROST_MESSAGE_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_MESSAGES_PER_SUBMIT = 64
ECDSA_DIGEST_BYTES = 32

TAPROOT_MERKLE_ROOT_BYTES = 32
# FROST presigning: most nonces one session makes (the enclave enforces its own bound, the same).
MAX_FROST_PRESIGN_BATCH = 100

PROTOCOLS = {
    pb.PROTOCOL_GG20_SECP256K1: epb.PROTOCOL_GG20_SECP256K1,
    pb.PROTOCOL_FROST_ED25519: epb.PROTOCOL_FROST_ED25519,
    pb.PROTOCOL_FROST_SECP256K1: epb.PROTOCOL_FROST_SECP256K1,
    pb.PROTOCOL_FROST_SECP256K1_TR: epb.PROTOCOL_FROST_SECP256K1_TR,
}
FROST_PROTOCOLS = frozenset({epb.PROTOCOL_FROST_ED25519, epb.PROTOCOL_FROST_SECP256K1, epb.PROTOCOL_FROST_SECP256K1_TR})
PUBLIC_PROTOCOLS = {enclave: public for public, enclave in PROTOCOLS.items()}
MESSAGE_HASHES = {
    pb.MESSAGE_HASH_UNSPECIFIED: epb.MESSAGE_HASH_UNSPECIFIED,
    pb.MESSAGE_HASH_RAW: epb.MESSAGE_HASH_RAW,
    pb.MESSAGE_HASH_SHA256: epb.MESSAGE_HASH_SHA256,
    pb.MESSAGE_HASH_KECCAK256: epb.MESSAGE_HASH_KECCAK256,
    pb.MESSAGE_HASH_DOUBLE_SHA256: epb.MESSAGE_HASH_DOUBLE_SHA256,
    pb.MESSAGE_HASH_ETH_PERSONAL: epb.MESSAGE_HASH_ETH_PERSONAL,
}
MAX_GG20_MESSAGE_BYTES = 64 * 1024
# The session kinds whose result is a key (a DKGResult), stored as a new key record.
KEY_MAKING_KINDS = frozenset({epb.SESSION_KIND_DKG, epb.SESSION_KIND_REFRESH, epb.SESSION_KIND_RESHARE})
# The session kinds whose public result is a DKGResult: those, and a repair (the same key, whose
# repaired party stores its rebuilt share under the key's own id).
KEY_RESULT_KINDS = KEY_MAKING_KINDS | {epb.SESSION_KIND_REPAIR}
STATES = {
    epb.SESSION_STATE_RUNNING: pb.SESSION_STATE_RUNNING,
    epb.SESSION_STATE_DONE: pb.SESSION_STATE_DONE,
    epb.SESSION_STATE_FAILED: pb.SESSION_STATE_FAILED,
}


def _session_id(value: str) -> str:
    if not SESSION_ID.fullmatch(value):
        raise InvalidArgument("session_id must be 1-128 characters of [A-Za-z0-9._:-]")
    return value


def _protocol(value: int) -> epb.Protocol:
    protocol: epb.Protocol | None = PROTOCOLS.get(value)  # type: ignore[call-overload]
    if protocol is None:
        names = ", ".join(pb.Protocol.Name(p) for p in PROTOCOLS)
        raise InvalidArgument(f"protocol must be one of {names}")
    return protocol


def _parties(party_ids: Sequence[str], self_party_id: str) -> list[str]:
    parties = list(party_ids)
    if not 2 <= len(parties) <= MAX_PARTIES:
        raise InvalidArgument(f"party_ids must list 2..{MAX_PARTIES} parties")
    bad = [p for p in parties if not PARTY_ID.fullmatch(p)]
    if bad:
        raise InvalidArgument("party_ids must be 1-64 characters of [A-Za-z0-9._:-]")
    if len(set(parties)) != len(parties):
        raise InvalidArgument("party_ids must be distinct")
    if self_party_id not in parties:
        raise InvalidArgument("self_party_id must be one of party_ids")
    return parties


def _key_id(value: str) -> str:
    if not KEY_ID.fullmatch(value):
        raise InvalidArgument("key_id must be 64 lowercase hex characters")
    return value


key_id = _key_id


def dkg_start(request: pb.StartDKGRequest) -> epb.SessionStart:
    parties = _parties(request.party_ids, request.self_party_id)
    if not 2 <= request.threshold <= len(parties):
        raise InvalidArgument("threshold must be at least 2 and at most the number of parties")
    return epb.SessionStart(
        session_id=_session_id(request.session_id),
        protocol=_protocol(request.protocol),
        kind=epb.SESSION_KIND_DKG,
        party_ids=parties,
        self_party_id=request.self_party_id,
        threshold=request.threshold,
    )


def refresh_start(request: pb.StartRefreshRequest) -> epb.SessionStart:
    """The enclave start of a refresh, without the source share and, for threshold 0, without
    the threshold: both come from the key record (signer.api.operations.prepare_refresh), which
    also checks the party list against the key's."""
    parties = _parties(request.party_ids, request.self_party_id)
    if request.threshold and not 2 <= request.threshold <= len(parties):
        raise InvalidArgument("threshold must be 0 (the key's) or the key's threshold")
    return epb.SessionStart(
        session_id=_session_id(request.session_id),
        protocol=_protocol(request.protocol),
        kind=epb.SESSION_KIND_REFRESH,
        key_id=_key_id(request.key_id),
        party_ids=parties,
        self_party_id=request.self_party_id,
        threshold=request.threshold,
    )


IDENTITY_KEY_BYTES = 65  # P-256, SEC1 uncompressed
MAX_SOURCE_KEY_BYTES = 33
CHAIN_CODE_BYTES = 32


def _party_list(ids: Sequence[str], what: str) -> list[str]:
    parties = list(ids)
    if not 2 <= len(parties) <= MAX_PARTIES:
        raise InvalidArgument(f"{what} must list 2..{MAX_PARTIES} parties")
    if any(not PARTY_ID.fullmatch(p) for p in parties):
        raise InvalidArgument(f"{what} must be 1-64 characters of [A-Za-z0-9._:-]")
    if len(set(parties)) != len(parties):
        raise InvalidArgument(f"{what} must be distinct")
    return parties


def _new_party_keys(request: pb.StartReshareRequest, parties: Sequence[str], dealers: Sequence[str]) -> None:
    """Exactly the new parties that do not deal are listed, each with a key of the right shape (the
    enclave checks that it is a point)."""
    listed, needed = set(request.new_party_keys), {p for p in parties if p not in dealers}
    if listed - needed:
        raise InvalidArgument(
            f"new_party_keys lists {', '.join(sorted(listed - needed))}: only parties of party_ids that are not"
            " source_signers are listed"
        )
    if needed - listed:
        raise InvalidArgument(
            f"new_party_keys must give the identity key of {', '.join(sorted(needed - listed))} (a party of"
            " party_ids that deals nothing)"
        )
    for party, key in request.new_party_keys.items():
        if len(key) != IDENTITY_KEY_BYTES or key[0] != 4:
            raise InvalidArgument(f"new_party_keys[{party}] must be a P-256 public key, SEC1 uncompressed (65 bytes)")


def reshare_start(request: pb.StartReshareRequest) -> epb.SessionStart:
    """The enclave start of a reshare, without the source share and, where the request leaves
    them to this node's record, without the source party set and threshold: those come from
    signer.api.operations.prepare_reshare, which also checks them against the record."""
    parties = _party_list(request.party_ids, "party_ids")
    dealers = _party_list(request.source_signers, "source_signers")
    if request.source_party_ids:
        old = _party_list(request.source_party_ids, "source_party_ids")
        if any(d not in old for d in dealers):
            raise InvalidArgument("source_signers must be parties of source_party_ids")
        if request.source_threshold and not 2 <= request.source_threshold <= len(old):
            raise InvalidArgument("source_threshold must be 0 (the key's) or 2..len(source_party_ids)")
    if request.source_threshold == 1 or request.source_threshold > MAX_PARTIES:
        raise InvalidArgument("source_threshold must be 0 (the key's) or the source key's threshold (at least 2)")
    if request.source_threshold and len(dealers) < request.source_threshold:
        raise InvalidArgument(
            f"source_signers must list at least source_threshold ({request.source_threshold}) parties"
        )
    if request.self_party_id not in parties and request.self_party_id not in dealers:
        raise InvalidArgument("self_party_id must be one of party_ids or source_signers")
    if not 2 <= request.threshold <= len(parties):
        raise InvalidArgument("threshold (the new key's) must be at least 2 and at most the number of party_ids")
    if len(set(parties) | set(dealers)) > MAX_PARTIES:
        raise InvalidArgument(f"a reshare session has at most {MAX_PARTIES} parties (party_ids and source_signers)")
    if len(request.source_public_key) > MAX_SOURCE_KEY_BYTES:
        raise InvalidArgument("source_public_key is longer than any key of this service")
    if len(request.source_chain_code) not in (0, CHAIN_CODE_BYTES):
        raise InvalidArgument(f"source_chain_code must be {CHAIN_CODE_BYTES} bytes or empty")
    _new_party_keys(request, parties, dealers)
    start = epb.SessionStart(
        session_id=_session_id(request.session_id),
        protocol=_protocol(request.protocol),
        kind=epb.SESSION_KIND_RESHARE,
        key_id=_key_id(request.key_id),
        party_ids=parties,
        self_party_id=request.self_party_id,
        threshold=request.threshold,
        source_party_ids=request.source_party_ids,
        source_signers=dealers,
        source_threshold=request.source_threshold,
        source_public_key=request.source_public_key,
        source_chain_code=request.source_chain_code,
    )
    start.new_party_keys.update(request.new_party_keys)
    return start


def repair_start(request: pb.StartRepairRequest) -> epb.SessionStart:
    """The enclave start of a FROST repair, without a helper's sealed share (it comes from the
    key record: signer.api.operations.prepare_repair, which also checks the request against it)."""
    protocol = _protocol(request.protocol)
    if protocol not in FROST_PROTOCOLS:
        raise InvalidArgument("a repair is for FROST keys; recover a GG20 share by a reshare (StartReshare)")
    parties = _party_list(request.party_ids, "party_ids")
    if not 2 <= request.threshold <= len(parties):
        raise InvalidArgument("threshold (the key's) must be at least 2 and at most the number of party_ids")
    if len(request.helpers) < request.threshold:
        raise InvalidArgument(f"helpers must list at least the key's threshold ({request.threshold}) of parties")
    helpers = _party_list(request.helpers, "helpers")
    r = request.repair_party_id
    if r not in parties:
        raise InvalidArgument("repair_party_id must be one of party_ids")
    if any(h not in parties for h in helpers):
        raise InvalidArgument("helpers must be parties of party_ids")
    if r in helpers:
        raise InvalidArgument("repair_party_id cannot be one of helpers: its share is the one lost")
    if request.self_party_id != r and request.self_party_id not in helpers:
        raise InvalidArgument("self_party_id must be repair_party_id or one of helpers")
    if len(request.public_key) > MAX_SOURCE_KEY_BYTES:
        raise InvalidArgument("public_key is longer than any key of this service")
    if len(request.chain_code) not in (0, CHAIN_CODE_BYTES):
        raise InvalidArgument(f"chain_code must be {CHAIN_CODE_BYTES} bytes or empty")
    key = request.repair_party_key
    if len(key) != IDENTITY_KEY_BYTES or key[0] != 4:
        raise InvalidArgument("repair_party_key must be a P-256 public key, SEC1 uncompressed (65 bytes)")
    start = epb.SessionStart(
        session_id=_session_id(request.session_id),
        protocol=protocol,
        kind=epb.SESSION_KIND_REPAIR,
        key_id=_key_id(request.key_id),
        party_ids=parties,
        self_party_id=request.self_party_id,
        threshold=request.threshold,
        source_signers=helpers,
        repair_party_id=r,
        source_public_key=request.public_key,
        source_chain_code=request.chain_code,
    )
    start.new_party_keys[r] = key
    return start


def session_parties(start: epb.SessionStart) -> list[str]:
    """Who takes part in a session (sends and receives its messages): its party_ids, for a
    reshare also the dealers that leave the set, and for a repair only the helpers and the
    repaired party (the key's other parties take no part)."""
    if start.kind == epb.SESSION_KIND_REPAIR:
        return [*start.source_signers, start.repair_party_id]
    parties = list(start.party_ids)
    if start.kind == epb.SESSION_KIND_RESHARE:
        parties += [d for d in start.source_signers if d not in parties]
    return parties


def _derivation_path(path: Sequence[int]) -> list[int]:
    if len(path) > MAX_DERIVATION_DEPTH or any(i >= 2**31 for i in path):
        raise InvalidArgument(f"derivation_path: at most {MAX_DERIVATION_DEPTH} non-hardened indices (< 2^31)")
    return list(path)


def _message_hash(request: pb.StartSignRequest, protocol: epb.Protocol) -> epb.MessageHash:
    rule = MESSAGE_HASHES.get(request.message_hash)
    if rule is None:
        raise InvalidArgument("unknown message_hash")
    if protocol in FROST_PROTOCOLS:
        if rule != epb.MESSAGE_HASH_UNSPECIFIED:
            raise InvalidArgument("message_hash is for GG20: FROST signs the message itself")
        if len(request.message) > MAX_FROST_MESSAGE_BYTES:
            raise InvalidArgument(f"message must be at most {MAX_FROST_MESSAGE_BYTES} bytes")
    elif rule in (epb.MESSAGE_HASH_UNSPECIFIED, epb.MESSAGE_HASH_RAW):
        if len(request.message) != ECDSA_DIGEST_BYTES:
            raise InvalidArgument("message must be the 32-byte digest for GG20 with message_hash RAW or unspecified")
    elif len(request.message) > MAX_GG20_MESSAGE_BYTES:
        raise InvalidArgument(f"message must be at most {MAX_GG20_MESSAGE_BYTES} bytes")
    return rule


def sign_start(request: pb.StartSignRequest) -> epb.SessionStart:
    protocol = _protocol(request.protocol)
    rule = _message_hash(request, protocol)
    path = _derivation_path(request.derivation_path)
    if request.taproot_merkle_root:
        if protocol != epb.PROTOCOL_FROST_SECP256K1_TR:
            raise InvalidArgument("taproot_merkle_root is for PROTOCOL_FROST_SECP256K1_TR only")
        if len(request.taproot_merkle_root) != TAPROOT_MERKLE_ROOT_BYTES:
            raise InvalidArgument(f"taproot_merkle_root must be {TAPROOT_MERKLE_ROOT_BYTES} bytes (or empty)")
    if request.signature_encoding == pb.SIGNATURE_ENCODING_DER and protocol != epb.PROTOCOL_GG20_SECP256K1:
        raise InvalidArgument("signature_encoding DER is for ECDSA (GG20) only")
    if request.signature_encoding not in (
        pb.SIGNATURE_ENCODING_UNSPECIFIED,
        pb.SIGNATURE_ENCODING_RAW,
        pb.SIGNATURE_ENCODING_DER,
    ):
        raise InvalidArgument("unknown signature_encoding")
    if request.presignature_id:
        if not SESSION_ID.fullmatch(request.presignature_id):
            raise InvalidArgument("presignature_id must be 1-128 characters of [A-Za-z0-9._:-]")
        if protocol in FROST_PROTOCOLS and path:
            raise InvalidArgument("derivation_path does not combine with a FROST presignature_id")
    if request.result_recipient_key:
        # The enclave checks the point itself; here only what needs no curve arithmetic.
        if len(request.result_recipient_key) not in (33, 65):
            raise InvalidArgument("result_recipient_key must be a P-256 public key in SEC1 encoding (33 or 65 bytes)")
        if request.signature_encoding == pb.SIGNATURE_ENCODING_DER:
            raise InvalidArgument("signature_encoding DER does not combine with result_recipient_key (sealed is raw)")
    return epb.SessionStart(
        session_id=_session_id(request.session_id),
        protocol=protocol,
        kind=epb.SESSION_KIND_SIGN,
        key_id=_key_id(request.key_id),
        party_ids=_parties(request.party_ids, request.self_party_id),
        self_party_id=request.self_party_id,
        message=request.message,
        message_hash=rule,
        derivation_path=path,
        presignature_id=request.presignature_id,
        taproot_merkle_root=request.taproot_merkle_root,
        result_recipient_key=request.result_recipient_key,
    )


def presign_start(request: pb.StartPresignRequest) -> epb.SessionStart:
    protocol = _protocol(request.protocol)
    count = 0
    if protocol in FROST_PROTOCOLS:
        count = request.count or 1
        if count > MAX_FROST_PRESIGN_BATCH:
            raise InvalidArgument(f"count: a FROST batch holds 1..{MAX_FROST_PRESIGN_BATCH} nonces")
        if request.derivation_path:
            raise InvalidArgument("derivation_path: FROST presignatures are for the key itself")
    elif request.count > 1:
        raise InvalidArgument("count: GG20 presigning makes one presignature (0 or 1)")
    return epb.SessionStart(
        session_id=_session_id(request.session_id),
        protocol=protocol,
        kind=epb.SESSION_KIND_PRESIGN,
        key_id=_key_id(request.key_id),
        party_ids=_parties(request.party_ids, request.self_party_id),
        self_party_id=request.self_party_id,
        derivation_path=_derivation_path(request.derivation_path),
        presign_count=count,
    )


def presignature_kind(protocol: int) -> epb.SealedBlobKind:
    """The sealed blob kind a stored presignature of this protocol goes to the enclave as."""
    return epb.SEALED_BLOB_KIND_FROST_NONCE if protocol in FROST_PROTOCOLS else epb.SEALED_BLOB_KIND_PRESIGNATURE


def fingerprint(
    request: pb.StartDKGRequest
    | pb.StartSignRequest
    | pb.StartPresignRequest
    | pb.StartRefreshRequest
    | pb.StartReshareRequest
    | pb.StartRepairRequest,
) -> bytes:
    """Identity of a start request, for idempotent starts (deterministic serialization)."""
    return hashlib.sha256(type(request).__name__.encode() + request.SerializeToString(deterministic=True)).digest()


def check_routing(messages: Sequence[pb.ProtocolMessage], party_ids: Sequence[str], me: str) -> None:
    """Every message is from another party of the session, to `me` or to everyone."""
    parties = set(party_ids)
    for index, message in enumerate(messages):
        if message.sender not in parties or message.sender == me:
            raise InvalidArgument(f"messages[{index}]: sender is not another party of the session")
        if message.recipient not in ("", me):
            raise InvalidArgument(f"messages[{index}]: recipient is not this party")


def submitted_session(messages: Sequence[pb.ProtocolMessage]) -> str:
    """Shape checks on a SubmitProtocolMessage batch; returns its session id."""
    if not messages:
        raise InvalidArgument("messages must not be empty")
    if len(messages) > MAX_MESSAGES_PER_SUBMIT:
        raise InvalidArgument(f"at most {MAX_MESSAGES_PER_SUBMIT} messages per request")
    session_id = _session_id(messages[0].session_id)
    for index, message in enumerate(messages):
        if message.session_id != session_id:
            raise InvalidArgument(f"messages[{index}]: all messages must belong to one session")
        if not PARTY_ID.fullmatch(message.sender):
            raise InvalidArgument(f"messages[{index}]: sender must be a party id")
        if message.recipient and not PARTY_ID.fullmatch(message.recipient):
            raise InvalidArgument(f"messages[{index}]: recipient must be a party id or empty")
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            raise InvalidArgument(f"messages[{index}]: payload larger than {MAX_PAYLOAD_BYTES} bytes")
    return session_id


def to_enclave_messages(messages: Sequence[pb.ProtocolMessage]) -> list[epb.EnclaveMessage]:
    return [
        epb.EnclaveMessage(sender=m.sender, recipient=m.recipient, round=m.round, payload=m.payload) for m in messages
    ]


def dkg_result(result: epb.SessionResult, start: epb.SessionStart) -> pb.DKGResult:
    """The public result of a key generation, a refresh or a reshare (whose predecessor is the
    source key; a reshare's party_ids and threshold are the new key's), or a repair (the key
    itself: its own id, no predecessor)."""
    return pb.DKGResult(
        key_id=result.key_id,
        public_key=result.public_key,
        chain_code=result.chain_code,
        protocol=PUBLIC_PROTOCOLS[start.protocol],
        threshold=start.threshold,
        party_ids=start.party_ids,
        predecessor_key_id=result.predecessor_key_id,
    )


def sign_result(result: epb.SessionResult, encoding: int) -> pb.SignResult:
    signature = result.signature
    if encoding == pb.SIGNATURE_ENCODING_DER:
        if len(signature) != 65:
            raise ValueError("enclave returned an ECDSA signature of unexpected length")
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
        signature = encode_dss_signature(r, s)
    return pb.SignResult(
        key_id=result.key_id,
        signature=signature,
        recovery_id=result.recovery_id,
        public_key=result.public_key,
        presignature_id=result.presignature_id,
        sealed_signature=result.sealed_signature,
        digest=result.digest,
    )
