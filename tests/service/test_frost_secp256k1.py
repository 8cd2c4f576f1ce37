"""FROST(secp256k1, SHA-256) and FROST Taproot (BIP340) through the service: real enclave
processes, real signers over mTLS, SQLite and PostgreSQL stores.

Every signature is checked outside mpc-signer's protocol code: Taproot by libsecp256k1's BIP340
verifier (coincurve), FROST(secp256k1) by ZcashFoundation frost (frost_rs) and by the Schnorr
equation on libsecp256k1 points (signer.client.verify).
"""

from __future__ import annotations

import base64
import hashlib
import itertools

import grpc
import pytest
from coincurve import PublicKey, PublicKeyXOnly
from frost_rs import utility_secp256k1

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from signer.client.verify import verify_frost_secp256k1
from tests.service.conftest import all_ok, sid, status_of

SECP = pb.PROTOCOL_FROST_SECP256K1
TR = pb.PROTOCOL_FROST_SECP256K1_TR
PROTOCOLS = [pytest.param(SECP, id="frost-secp256k1"), pytest.param(TR, id="frost-secp256k1-tr")]


def _zf_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """ZF frost's verifier; a public key package with the group key alone is what it reads."""
    header = b"\x00" + bytes.fromhex("eed6b1b1")  # ZF postcard header of FROST(secp256k1, SHA-256)
    package = header + b"\x00" + public_key + b"\x00"  # no verifying shares, no min_signers
    b64 = base64.urlsafe_b64encode
    return bool(utility_secp256k1.verify(message, b64(package).decode(), b64(signature).decode()))


def check(protocol: int, public_key: bytes, message: bytes, result: pb.SignResult) -> None:
    signature = result.signature
    assert result.recovery_id == 0
    if protocol == TR:
        assert len(public_key) == 32 and len(signature) == 64
        assert PublicKeyXOnly(public_key).verify(signature, message)
        assert not PublicKeyXOnly(public_key).verify(signature, message + b"!")
    else:
        assert len(public_key) == 33 and len(signature) == 65
        PublicKey(public_key)  # a valid compressed point
        assert _zf_verify(public_key, message, signature)
        assert verify_frost_secp256k1(public_key, message, signature)
        assert not _zf_verify(public_key, message + b"!", signature)


async def dkg(relay: Relay, protocol: int, parties: tuple[str, ...], threshold: int) -> pb.DKGResult:
    results = all_ok(await relay.run(SessionSpec("dkg", sid("dkg"), protocol, parties, threshold=threshold)))  # type: ignore[arg-type]
    first = next(iter(results.values())).dkg
    assert all(r.dkg.key_id == first.key_id and r.dkg.public_key == first.public_key for r in results.values())
    assert first.protocol == protocol and len(first.chain_code) == 32 and first.threshold == threshold
    assert len(first.public_key) == (33 if protocol == SECP else 32)
    return first


async def sign(
    relay: Relay, protocol: int, signers: tuple[str, ...], key_id: str, message: bytes, merkle_root: bytes = b""
) -> pb.SignResult:
    spec = SessionSpec(
        "sign",
        sid("sign"),
        protocol,
        signers,
        key_id=key_id,
        message=message,  # type: ignore[arg-type]
        taproot_merkle_root=merkle_root,
    )
    results = all_ok(await relay.run(spec))
    assert len({r.sign.signature for r in results.values()}) == 1, "every signer outputs the same signature"
    assert len({r.sign.public_key for r in results.values()}) == 1
    return next(iter(results.values())).sign


@pytest.fixture(scope="module")
def node_a(start_node):  # type: ignore[no-untyped-def]
    return start_node("secp-a")


@pytest.fixture(scope="module")
def node_b(start_node):  # type: ignore[no-untyped-def]
    return start_node("secp-b", store="postgresql")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_two_of_two_dkg_and_sign(protocol, node_a, local, connect) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "secp-a": connect(node_a)})
    parties = ("client", "secp-a")
    key = await dkg(relay, protocol, parties, 2)
    for message in (b"two of two", bytes(32), b"x" * 5000):
        result = await sign(relay, protocol, parties, key.key_id, message)
        assert result.key_id == key.key_id and result.public_key == key.public_key
        check(protocol, key.public_key, message, result)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.postgres
async def test_two_of_three_every_pair_signs_across_stores(protocol, node_a, node_b, local, connect) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "secp-a": connect(node_a), "secp-b": connect(node_b)})
    parties = ("client", "secp-a", "secp-b")
    key = await dkg(relay, protocol, parties, 2)
    for signers in itertools.combinations(parties, 2):
        message = f"signed by {signers}".encode()
        check(protocol, key.public_key, message, await sign(relay, protocol, signers, key.key_id, message))


async def test_taproot_script_tree_root(node_a, local, clients) -> None:  # type: ignore[no-untyped-def]
    """With a merkle root the signature verifies under the BIP341 output key for that root,
    which SignResult names; the DKG key is the internal key. Over an Exchange stream."""
    relay = Relay({"client": local, "secp-a": clients(node_a)})
    parties = ("client", "secp-a")
    key = await dkg(relay, TR, parties, 2)
    root = bytes(range(32))
    result = await sign(relay, TR, parties, key.key_id, b"script path exists", root)
    assert result.public_key != key.public_key
    check(TR, result.public_key, b"script path exists", result)
    assert not PublicKeyXOnly(key.public_key).verify(result.signature, b"script path exists")
    # the output key is BIP341's: Q = lift_x(P) + int(hashTapTweak(x(P) || root)) * G
    tag = hashlib.sha256(b"TapTweak").digest()
    tweak = hashlib.sha256(tag + tag + key.public_key + root).digest()
    q = PublicKey.combine_keys([PublicKey(b"\x02" + key.public_key), PublicKey.from_secret(tweak)])
    assert q.format()[1:] == result.public_key


async def test_bad_requests_are_refused_precisely(node_a, local, connect) -> None:  # type: ignore[no-untyped-def]
    signer = connect(node_a)
    relay = Relay({"client": local, "secp-a": signer})
    parties = ("client", "secp-a")
    tr_key = await dkg(relay, TR, parties, 2)
    secp_key = await dkg(relay, SECP, parties, 2)

    def start(**kw):  # type: ignore[no-untyped-def]
        args = dict(
            session_id=sid("bad"),
            protocol=TR,
            key_id=tr_key.key_id,
            message=b"m",
            party_ids=parties,
            self_party_id="secp-a",
        )
        args.update(kw)
        return signer.start_sign(pb.StartSignRequest(**args))

    cases = [
        (dict(protocol=SECP, key_id=secp_key.key_id, taproot_merkle_root=bytes(32)), "PROTOCOL_FROST_SECP256K1_TR"),
        (dict(taproot_merkle_root=bytes(31)), "32 bytes (or empty)"),  # the host refuses it first
        (dict(protocol=SECP), "protocol does not match key"),
        (dict(signature_encoding=pb.SIGNATURE_ENCODING_DER), "DER"),
        (dict(message=b"m" * (64 * 1024 + 1)), "at most"),
        (dict(derivation_path=[1 << 31]), "derivation_path"),  # hardened: refused by the host
    ]
    for kw, text in cases:
        code, message = await status_of(start(**kw))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and text in message, (kw.keys(), code, message)
    # nothing was started or stored by the refusals: the key still signs
    check(TR, tr_key.public_key, b"after", await sign(relay, TR, parties, tr_key.key_id, b"after"))


@pytest.mark.postgres
async def test_keys_survive_a_node_restart(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node("secp-restart", store="postgresql")
    parties = ("client", "secp-restart")
    keys = {}
    relay = Relay({"client": local, "secp-restart": connect(node)})
    for protocol in (SECP, TR):
        keys[protocol] = await dkg(relay, protocol, parties, 2)
    node.stop()
    node.start()
    relay = Relay({"client": local, "secp-restart": connect(node)})
    for protocol, key in keys.items():
        result = await sign(relay, protocol, parties, key.key_id, b"after restart")
        check(protocol, key.public_key, b"after restart", result)
