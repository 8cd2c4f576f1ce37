"""Public API validation: each malformed request is refused with INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.errors import InvalidArgument
from signer.sessions import convert


def dkg(**kw: object) -> pb.StartDKGRequest:
    base = dict(
        session_id="s", protocol=pb.PROTOCOL_GG20_SECP256K1, threshold=2, party_ids=["a", "b", "c"], self_party_id="b"
    )
    base.update(kw)
    return pb.StartDKGRequest(**base)  # type: ignore[arg-type]


def sign(**kw: object) -> pb.StartSignRequest:
    base = dict(
        session_id="s",
        protocol=pb.PROTOCOL_GG20_SECP256K1,
        key_id="0" * 64,
        message=b"\x01" * 32,
        party_ids=["a", "b"],
        self_party_id="a",
    )
    base.update(kw)
    return pb.StartSignRequest(**base)  # type: ignore[arg-type]


def test_valid_requests_convert() -> None:
    start = convert.dkg_start(dkg())
    assert start.kind == epb.SESSION_KIND_DKG and list(start.party_ids) == ["a", "b", "c"] and start.threshold == 2
    start = convert.sign_start(sign(derivation_path=[0, 7]))
    assert start.kind == epb.SESSION_KIND_SIGN and list(start.derivation_path) == [0, 7]
    assert (
        convert.presign_start(
            pb.StartPresignRequest(
                session_id="p",
                protocol=pb.PROTOCOL_GG20_SECP256K1,
                key_id="f" * 64,
                party_ids=["a", "b"],
                self_party_id="a",
            )
        ).kind
        == epb.SESSION_KIND_PRESIGN
    )
    start = convert.sign_start(sign(message=b"any length", message_hash=pb.MESSAGE_HASH_ETH_PERSONAL))
    assert start.message_hash == epb.MESSAGE_HASH_ETH_PERSONAL and start.message == b"any length"
    start = convert.presign_start(
        pb.StartPresignRequest(
            session_id="p",
            protocol=pb.PROTOCOL_GG20_SECP256K1,
            key_id="f" * 64,
            party_ids=["a", "b"],
            self_party_id="a",
            derivation_path=[44, 60],
        )
    )
    assert list(start.derivation_path) == [44, 60]
    with pytest.raises(InvalidArgument, match="derivation_path"):
        convert.presign_start(
            pb.StartPresignRequest(
                session_id="p",
                protocol=pb.PROTOCOL_GG20_SECP256K1,
                key_id="f" * 64,
                party_ids=["a", "b"],
                self_party_id="a",
                derivation_path=[2**31],
            )
        )


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (dkg(protocol=pb.PROTOCOL_UNSPECIFIED), "protocol"),
        (dkg(protocol=99), "protocol"),
        (dkg(threshold=1), "threshold"),
        (dkg(threshold=4), "threshold"),
        (dkg(party_ids=["a", "a", "b"]), "distinct"),
        (dkg(self_party_id="z"), "self_party_id"),
        (dkg(party_ids=["a"], self_party_id="a"), "party_ids"),
        (dkg(party_ids=["a", "b c"]), "party_ids"),
        (dkg(session_id=""), "session_id"),
        (dkg(session_id="x" * 129), "session_id"),
        # `^...$` with re.match let a trailing newline through: every id check is a full match
        (dkg(session_id="s1\n"), "session_id"),
        (dkg(party_ids=["a", "b\n", "c"], self_party_id="a"), "party_ids"),
    ],
)
def test_bad_dkg(request_: pb.StartDKGRequest, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        convert.dkg_start(request_)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (sign(message=b"\x01" * 31), "32-byte digest"),
        (sign(key_id="XYZ"), "key_id"),
        (sign(key_id="ab" * 32 + "\n"), "key_id"),
        (sign(derivation_path=[2**31]), "derivation_path"),
        (sign(protocol=pb.PROTOCOL_FROST_ED25519, signature_encoding=pb.SIGNATURE_ENCODING_DER), "DER"),
        (sign(protocol=pb.PROTOCOL_FROST_ED25519, message=b"x" * (64 * 1024 + 1)), "message"),
        (sign(protocol=pb.PROTOCOL_FROST_ED25519, presignature_id="p1", derivation_path=[1]), "derivation_path"),
        (sign(presignature_id="bad id"), "presignature_id"),
        (sign(signature_encoding=7), "signature_encoding"),
        (sign(message_hash=9), "message_hash"),
        (sign(message=b"x" * 33, message_hash=pb.MESSAGE_HASH_RAW), "32-byte digest"),
        (sign(message=b"x" * (64 * 1024 + 1), message_hash=pb.MESSAGE_HASH_KECCAK256), "at most"),
        (sign(protocol=pb.PROTOCOL_FROST_ED25519, message_hash=pb.MESSAGE_HASH_SHA256), "message_hash"),
    ],
)
def test_bad_sign(request_: pb.StartSignRequest, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        convert.sign_start(request_)


def test_presign_count_per_protocol() -> None:
    def presign(protocol: int, count: int, path: tuple[int, ...] = ()) -> epb.SessionStart:
        return convert.presign_start(
            pb.StartPresignRequest(
                session_id="p",
                protocol=protocol,  # type: ignore[arg-type]
                key_id="f" * 64,
                party_ids=["a", "b"],
                self_party_id="a",
                count=count,
                derivation_path=path,
            )
        )

    assert presign(pb.PROTOCOL_FROST_ED25519, 0).presign_count == 1
    assert presign(pb.PROTOCOL_FROST_SECP256K1_TR, 100).presign_count == 100
    assert presign(pb.PROTOCOL_GG20_SECP256K1, 1).presign_count == 0
    for protocol, count, path, field in (
        (pb.PROTOCOL_FROST_ED25519, 101, (), "count"),
        (pb.PROTOCOL_FROST_ED25519, 1, (1,), "derivation_path"),
        (pb.PROTOCOL_GG20_SECP256K1, 2, (), "count"),
    ):
        with pytest.raises(InvalidArgument, match=field):
            presign(protocol, count, path)


def test_submission_shape() -> None:
    m = pb.ProtocolMessage(session_id="s", sender="a", seq=1)
    assert convert.submitted_session([m]) == "s"
    for bad, field in (
        ([], "empty"),
        ([m, pb.ProtocolMessage(session_id="t", sender="a", seq=2)], "one session"),
        ([pb.ProtocolMessage(session_id="s", sender="", seq=1)], "sender"),
        ([pb.ProtocolMessage(session_id="s", sender="a", recipient="b c", seq=1)], "recipient"),
        ([pb.ProtocolMessage(session_id="s", sender="a", seq=1, payload=b"x" * (1024 * 1024 + 1))], "payload"),
    ):
        with pytest.raises(InvalidArgument, match=field):
            convert.submitted_session(bad)


def test_der_encoding_of_an_ecdsa_result() -> None:
    r, s = 0x1234, (1 << 255) + 5
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big") + b"\x01"
    result = convert.sign_result(epb.SessionResult(signature=raw, recovery_id=1), pb.SIGNATURE_ENCODING_DER)
    assert decode_dss_signature(result.signature) == (r, s) and result.recovery_id == 1
    assert convert.sign_result(epb.SessionResult(signature=raw), pb.SIGNATURE_ENCODING_RAW).signature == raw
