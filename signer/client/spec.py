"""What a relayed session is (`SessionSpec`) and what each party ended with (`Outcome`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mpc.v1 import signer_pb2 as pb

Kind = Literal["dkg", "sign", "presign", "refresh"]
# The SessionResult field each kind's result comes in (a refresh answers with a DKGResult).
RESULT_FIELDS: dict[str, str] = {"dkg": "dkg", "sign": "sign", "presign": "presign", "refresh": "dkg"}


@dataclass(frozen=True)
class SessionSpec:
    """One session as every party starts it (each party adds its own id)."""

    kind: Kind
    session_id: str
    protocol: pb.Protocol
    party_ids: tuple[str, ...]
    threshold: int = 0  # dkg; refresh: the key's, or 0 to let each party take it from its record
    key_id: str = ""  # sign, presign; refresh: the source key
    message: bytes = b""  # sign: GG20 the message hashed by message_hash (or the 32-byte digest), FROST the message
    derivation_path: tuple[int, ...] = ()  # sign; presign: the path the presignature is bound to
    presignature_id: str = ""
    taproot_merkle_root: bytes = b""  # sign, FROST Taproot: a script tree's merkle root
    # sign, optional: signer nodes seal the signature to this P-256 key (signer.client.sealed_result)
    result_recipient_key: bytes = b""
    message_hash: pb.MessageHash = pb.MESSAGE_HASH_UNSPECIFIED  # sign (GG20)
    count: int = 0  # presign, FROST: the batch size (0: one)

    def dkg_request(self, self_party_id: str, messages: Sequence[pb.ProtocolMessage] = ()) -> pb.StartDKGRequest:
        return pb.StartDKGRequest(
            session_id=self.session_id,
            protocol=self.protocol,
            threshold=self.threshold,
            party_ids=self.party_ids,
            self_party_id=self_party_id,
            messages=messages,
        )

    def refresh_request(
        self, self_party_id: str, messages: Sequence[pb.ProtocolMessage] = ()
    ) -> pb.StartRefreshRequest:
        return pb.StartRefreshRequest(
            session_id=self.session_id,
            protocol=self.protocol,
            key_id=self.key_id,
            party_ids=self.party_ids,
            self_party_id=self_party_id,
            threshold=self.threshold,
            messages=messages,
        )

    def sign_request(self, self_party_id: str, messages: Sequence[pb.ProtocolMessage] = ()) -> pb.StartSignRequest:
        return pb.StartSignRequest(
            session_id=self.session_id,
            protocol=self.protocol,
            key_id=self.key_id,
            message=self.message,
            derivation_path=self.derivation_path,
            party_ids=self.party_ids,
            self_party_id=self_party_id,
            presignature_id=self.presignature_id,
            messages=messages,
            taproot_merkle_root=self.taproot_merkle_root,
            result_recipient_key=self.result_recipient_key,
            message_hash=self.message_hash,
        )

    def presign_request(
        self, self_party_id: str, messages: Sequence[pb.ProtocolMessage] = ()
    ) -> pb.StartPresignRequest:
        return pb.StartPresignRequest(
            session_id=self.session_id,
            protocol=self.protocol,
            key_id=self.key_id,
            party_ids=self.party_ids,
            self_party_id=self_party_id,
            messages=messages,
            derivation_path=self.derivation_path,
            count=self.count,
        )


@dataclass
class Outcome:
    """A party's end of a session: state, and the result or the failure."""

    party_id: str
    state: int = pb.SESSION_STATE_UNSPECIFIED
    result: pb.SessionResult | None = field(default=None, repr=False)
    failure: pb.SessionFailure | None = None

    @property
    def finished(self) -> bool:
        return self.state in (pb.SESSION_STATE_DONE, pb.SESSION_STATE_FAILED)

    @property
    def ok(self) -> bool:
        return self.state == pb.SESSION_STATE_DONE
