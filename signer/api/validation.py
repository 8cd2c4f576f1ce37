"""ValidateKey: the host's half. It hands the enclave a key's stored sealed share with what the
store records (protocol, public key, optionally this node's party id) and maps the enclave's
verdict (enclave/engine/validation.py) to the public one. It adds one check only the host can
make: the party the share belongs to must have the party number the store records for this node
in the key (signer/api/operations.py), so another node's blob copied into this store is
WRONG_NODE even when the caller names no party. Shared by the RPC and `mpc-signer validate`.
"""

from __future__ import annotations

from door.protocols import PROTOCOL_NAMES
from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.api.operations import party_number
from signer.errors import InvalidArgument
from signer.link.client import EnclaveClient
from signer.sessions.convert import PARTY_ID, PUBLIC_PROTOCOLS
from signer.storage import KeyRecord

VALIDITY = {
    epb.KEY_VERDICT_VALID: pb.KEY_VALIDITY_VALID,
    epb.KEY_VERDICT_FAILED_AUTHENTICATION: pb.KEY_VALIDITY_FAILED_AUTHENTICATION,
    epb.KEY_VERDICT_WRONG_NODE: pb.KEY_VALIDITY_WRONG_NODE,
    epb.KEY_VERDICT_INCONSISTENT_SHARE: pb.KEY_VALIDITY_INCONSISTENT_SHARE,
}
_PROTOCOL_BY_TOKEN: dict[str, epb.Protocol] = {
    token: epb.Protocol.ValueType(protocol)  # type: ignore[misc]
    for protocol, token in PROTOCOL_NAMES.items()
}
VALIDATE_TIMEOUT = 30.0  # a GG20 share costs two primality tests and a few multiplications per party


async def validate_key(enclave: EnclaveClient, key: KeyRecord, self_party_id: str = "") -> pb.ValidateKeyResponse:
    if self_party_id and not PARTY_ID.fullmatch(self_party_id):
        raise InvalidArgument("self_party_id must be 1-64 characters of [A-Za-z0-9._:-]")
    protocol = _PROTOCOL_BY_TOKEN.get(key.protocol)
    if protocol is None:
        raise InvalidArgument(f"key {key.key_id} has a protocol this node does not know ({key.protocol})")
    request = epb.Request(
        validate_key=epb.ValidateKeyRequest(
            sealed_share=epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share),
            protocol=protocol,
            public_key=key.public_key,
            expected_party_id=self_party_id,
        )
    )
    answer = (await enclave.call(request, timeout=VALIDATE_TIMEOUT)).key_validation
    validity = VALIDITY.get(answer.verdict, pb.KEY_VALIDITY_UNSPECIFIED)
    reason = answer.reason
    if answer.party_id and validity != pb.KEY_VALIDITY_WRONG_NODE and party_number(answer.party_id) != key.party_id:
        validity = pb.KEY_VALIDITY_WRONG_NODE
        reason = (
            f"this is party {answer.party_id!r}'s share of the key, and this node's store records another party "
            "for itself (another node's sealed share?)"
        )
    return pb.ValidateKeyResponse(
        key_id=key.key_id,
        validity=validity,
        reason=reason,
        protocol=PUBLIC_PROTOCOLS[protocol],
        public_key=key.public_key,
        party_id=answer.party_id,
    )
