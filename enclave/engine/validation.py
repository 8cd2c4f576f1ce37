"""ValidateKeyRequest: unseal one key share and check it, signing nothing.

Checks, in order, each failure naming itself (never a secret value):

1. the blob unseals under this enclave's durable sealer for exactly this key id, protocol and
   the party index in its header (else FAILED_AUTHENTICATION: altered bytes, another node's or an
   old sealing key, another binding);
2. its record decodes and matches its binding (else INCONSISTENT_SHARE);
3. it is the expected party's share when the host names one (else WRONG_NODE);
4. the record's public key is the one the host records for the key (else INCONSISTENT_SHARE);
5. the protocol share itself: decodes strictly (points on the curve and in the subgroup), is this
   party's, its secret times G is its public share, every party's public share lies on one
   polynomial of degree threshold-1 whose value at 0 is the group public key, the threshold and
   party list agree with the record, and for GG20 the chain code agrees and the Paillier secret
   key is two distinct primes whose product is the party's recorded modulus.

Runs in a worker thread (the GG20 checks cost a few scalar multiplications per party and two
primality tests), so the event loop keeps answering pings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from door.protocols import PROTOCOL_NAMES
from enclave.crypto.polynomial import lagrange_coefficient
from enclave.crypto.primes import is_probable_prime
from enclave.engine import blobs
from enclave.engine.blobs import BlobInvalid, ShareRecord
from enclave.engine.common import invalid
from enclave.engine.frost import SUITES as FROST_SUITES
from enclave.engine.frost_share import public_key_bytes
from enclave.engine.keyids import is_key_id
from enclave.errors import EnclaveError, InvalidEncoding
from enclave.group.base import Group
from enclave.group.secp256k1 import SECP256K1
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import Ciphersuite, identifier_from_int
from enclave.protocols.frost.derive import CHAIN_CODE_LEN
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.sealing import Sealer
from mpc.v1 import enclave_pb2 as pb


class KeyValidator:
    """What `enclave.service.EnclaveService` calls for `validate_key` requests."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    async def validate(self, request: pb.ValidateKeyRequest) -> pb.KeyValidation:
        return await asyncio.to_thread(validate_key, self._sealer, request)


def _verdict(verdict: int, reason: str = "", record: ShareRecord | None = None) -> pb.KeyValidation:
    answer = pb.KeyValidation(verdict=verdict, reason=reason)  # type: ignore[arg-type]
    if record is not None:
        answer.party_id = record.self_party
        answer.threshold = record.threshold
        answer.party_ids.extend(record.parties)
    return answer


def validate_key(sealer: Sealer, request: pb.ValidateKeyRequest) -> pb.KeyValidation:
    protocol = PROTOCOL_NAMES.get(request.protocol)
    if protocol is None:
        raise invalid("unknown protocol")
    blob = request.sealed_share
    if blob.kind != pb.SEALED_BLOB_KIND_KEY_SHARE or not is_key_id(blob.id):
        raise invalid("sealed_share must be a key share whose id is the key id (64 lowercase hex characters)")
    key_id = blob.id
    try:
        index, plaintext = blobs.unseal(sealer, blob.data, key_id=key_id, protocol=protocol, purpose="share")
    except BlobInvalid as exc:
        return _verdict(pb.KEY_VERDICT_FAILED_AUTHENTICATION, str(exc))
    try:
        record = ShareRecord.decode(plaintext)
    except InvalidEncoding as exc:
        return _verdict(pb.KEY_VERDICT_INCONSISTENT_SHARE, f"the key-share record does not decode: {exc}")
    if record.index != index or record.key_id != key_id or record.protocol != protocol:
        return _verdict(pb.KEY_VERDICT_INCONSISTENT_SHARE, "the key-share record does not match its binding")
    if request.expected_party_id and record.self_party != request.expected_party_id:
        return _verdict(
            pb.KEY_VERDICT_WRONG_NODE,
            f"this is party {record.self_party!r}'s share of the key, not {request.expected_party_id!r}'s",
            record,
        )
    if request.public_key and record.public_key != request.public_key:
        return _verdict(
            pb.KEY_VERDICT_INCONSISTENT_SHARE,
            "the share's group public key is not the public key this node records for the key",
            record,
        )
    if len(record.chain_code) not in (0, CHAIN_CODE_LEN):
        # Derivation (BIP32-style for GG20, the additive rule for FROST) reads exactly 32 bytes.
        return _verdict(
            pb.KEY_VERDICT_INCONSISTENT_SHARE,
            f"the share's chain code is {len(record.chain_code)} bytes, not {CHAIN_CODE_LEN} (or none)",
            record,
        )
    suite = FROST_SUITES.get(request.protocol)
    check = _gg20_problem if suite is None else (lambda r: _frost_problem(suite, r))
    try:
        problem = check(record)
    except EnclaveError as exc:  # a decoder or group operation refusing a value
        problem = f"the share does not decode: {exc}"
    if problem is not None:
        return _verdict(pb.KEY_VERDICT_INCONSISTENT_SHARE, problem, record)
    return _verdict(pb.KEY_VERDICT_VALID, "", record)


def _polynomial_problem(group: Group, shares: Mapping[int, Any], threshold: int, public_key: Any) -> str | None:
    """Every public share X_x on one polynomial of degree threshold-1 with value Y at 0 (Lagrange
    in the exponent from the first `threshold` shares)."""
    xs = sorted(shares)
    basis = xs[:threshold]

    def at(x: int) -> Any:
        acc = group.identity()
        for j in basis:
            acc = group.add(acc, group.mul(shares[j], lagrange_coefficient(group.order, j, basis, at=x)))
        return acc

    if not group.eq(at(0), public_key):
        return "the key's public shares do not combine to its public key"
    for x in xs[threshold:]:
        if not group.eq(at(x), shares[x]):
            return f"the public share of party index {x} is not consistent with the others"
    return None


def _frost_problem(cs: Ciphersuite, record: ShareRecord) -> str | None:
    key_bytes, public_bytes = blobs.unpack(record.share, 2)
    key = wire.decode_key_package(cs, key_bytes)  # strict; refuses signing share * G != verifying share
    public = wire.decode_public_key_package(cs, public_bytes)
    me = identifier_from_int(record.index)
    if key.identifier != me:
        return "the FROST key package belongs to another participant than the share's party"
    # the record holds the key as the API shows it (x-only for Taproot)
    if public_key_bytes(cs, key.verifying_key) != record.public_key or public.verifying_key != key.verifying_key:
        return "the FROST key packages name another group public key than the share's record"
    if public.verifying_shares.get(me) != key.verifying_share:
        return "the share's public share differs from the one in the key's public key package"
    if key.min_signers != record.threshold:
        return "the FROST key package's threshold differs from the record's"
    expected = {identifier_from_int(i) for i in range(1, len(record.parties) + 1)}
    if set(public.verifying_shares) != expected:
        return "the public key package does not hold exactly one public share per party of the key"
    group = cs.group
    points = {x: group.decode(v) for x, v in public.verifying_shares.items()}
    return _polynomial_problem(group, points, record.threshold, group.decode(key.verifying_key))


def _gg20_problem(record: ShareRecord) -> str | None:
    share = KeyShare.from_bytes(record.share)
    n = len(record.parties)
    if share.index != record.index or share.threshold != record.threshold or share.parties != tuple(range(1, n + 1)):
        return "the GG20 share's index, threshold or parties differ from the record's"
    if share.public_key != record.public_key or share.chain_code != record.chain_code:
        return "the GG20 share's public key or chain code differs from the record's"
    if not 0 < share.secret < SECP256K1.order:
        return "the GG20 secret share is out of range"
    if set(share.public_shares) != set(share.parties) or set(share.aux) != set(share.parties):
        return "the GG20 share does not hold one public share and one Paillier key per party"
    points = {j: SECP256K1.decode(v) for j, v in share.public_shares.items()}
    if not SECP256K1.eq(SECP256K1.base_mul(share.secret), points[share.index]):
        return "the secret share does not match this party's public share"
    problem = _polynomial_problem(SECP256K1, points, share.threshold, SECP256K1.decode(share.public_key))
    if problem is not None:
        return problem
    p, q = share.paillier_p, share.paillier_q
    if p == q or p * q != share.aux[share.index].n or not (is_probable_prime(p) and is_probable_prime(q)):
        return "the Paillier secret key does not match this party's Paillier modulus"
    return None
