"""What a relayed session is (`SessionSpec`) and what each party ended with (`Outcome`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mpc.v1 import signer_pb2 as pb

Kind = Literal["dkg", "sign", "presign", "refresh", "reshare", "repair"]
# The SessionResult field each kind's result comes in (a refresh, reshare or repair answers with a DKGResult).
RESULT_FIELDS: dict[str, str] = {
    "dkg": "dkg",
    "sign": "sign",
    "presign": "presign",
    "refresh": "dkg",
    "reshare": "dkg",
    "repair": "dkg",
}


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
    # reshare: party_ids and threshold are the new key's, key_id the source; the source key as a
    # party new to it needs it described (`reshare_spec` fills these from the source key).
    source_party_ids: tuple[str, ...] = ()
    source_signers: tuple[str, ...] = ()  # the dealers
    source_threshold: int = 0
    source_public_key: bytes = b""
    source_chain_code: bytes = b""
    # reshare: each new party that deals nothing -> its identity key; empty: the relay gathers them.
    # repair: the repaired party -> its identity key (repair_party_key), likewise.
    new_party_keys: Mapping[str, bytes] = field(default_factory=dict)
    # repair: party_ids and threshold are the key's, source_signers the helpers, source_public_key
    # and source_chain_code the key's (`repair_spec` fills them from the key).
    repair_party_id: str = ""

    @property
    def session_parties(self) -> tuple[str, ...]:
        """Every party of the session: party_ids, for a reshare also the dealers leaving the key,
        and for a repair only the helpers and the repaired party."""
        if self.kind == "repair":
            return (*self.source_signers, self.repair_party_id)
        if self.kind != "reshare":
            return self.party_ids
        return self.party_ids + tuple(d for d in self.source_signers if d not in self.party_ids)

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

    def reshare_request(
        self, self_party_id: str, messages: Sequence[pb.ProtocolMessage] = ()
    ) -> pb.StartReshareRequest:
        return pb.StartReshareRequest(
            session_id=self.session_id,
            protocol=self.protocol,
            key_id=self.key_id,
            party_ids=self.party_ids,
            self_party_id=self_party_id,
            threshold=self.threshold,
            messages=messages,
            source_party_ids=self.source_party_ids,
            source_signers=self.source_signers,
            source_threshold=self.source_threshold,
            source_public_key=self.source_public_key,
            source_chain_code=self.source_chain_code,
            new_party_keys=dict(self.new_party_keys),
        )

    def repair_request(self, self_party_id: str, messages: Sequence[pb.ProtocolMessage] = ()) -> pb.StartRepairRequest:
        return pb.StartRepairRequest(
            session_id=self.session_id,
            protocol=self.protocol,
            key_id=self.key_id,
            party_ids=self.party_ids,
            self_party_id=self_party_id,
            threshold=self.threshold,
            messages=messages,
            helpers=self.source_signers,
            repair_party_id=self.repair_party_id,
            public_key=self.source_public_key,
            chain_code=self.source_chain_code,
            repair_party_key=self.new_party_keys.get(self.repair_party_id, b""),
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


def reshare_spec(
    session_id: str,
    source: pb.DKGResult | pb.KeyInfo,
    party_ids: Sequence[str],
    threshold: int,
    dealers: Sequence[str],
) -> SessionSpec:
    """A reshare of `source` (a DKGResult or a KeyInfo from GetKey) to `party_ids` with
    `threshold`, dealt by `dealers`, described fully so that a party new to the key can join."""
    return SessionSpec(
        "reshare",
        session_id,
        source.protocol,
        tuple(party_ids),
        threshold=threshold,
        key_id=source.key_id,
        source_party_ids=tuple(source.party_ids),
        source_signers=tuple(dealers),
        source_threshold=source.threshold,
        source_public_key=source.public_key,
        source_chain_code=source.chain_code,
    )


def repair_spec(
    session_id: str, key: pb.DKGResult | pb.KeyInfo, helpers: Sequence[str], repair_party_id: str
) -> SessionSpec:
    """A FROST repair of `repair_party_id`'s share of `key` (a DKGResult or a KeyInfo from GetKey),
    helped by `helpers` (at least the key's threshold of its other parties). The relay gathers the
    repaired party's identity key from its node."""
    return SessionSpec(
        "repair",
        session_id,
        key.protocol,
        tuple(key.party_ids),
        threshold=key.threshold,
        key_id=key.key_id,
        source_signers=tuple(helpers),
        source_public_key=key.public_key,
        source_chain_code=key.chain_code,
        repair_party_id=repair_party_id,
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


def require_ok(outcomes: Mapping[str, Outcome], what: str) -> Mapping[str, Outcome]:
    """`outcomes` if every party finished DONE; else RuntimeError naming each failed party."""
    failed = {p: o.failure for p, o in outcomes.items() if not o.ok}
    if failed:
        raise RuntimeError(f"{what} failed: {failed}")
    return outcomes
