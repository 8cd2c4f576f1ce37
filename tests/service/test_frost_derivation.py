"""Non-hardened derivation of FROST keys through the service: real enclave processes, real
signers over mTLS, SQLite.

The derived key each signature names is computed again here from the DKG's public key and
chain code alone (tests.enclave.frost.derivation_rule: PyNaCl and coincurve point arithmetic),
and every signature is checked under it by libsodium (Ed25519), the Schnorr equation on
libsecp256k1 points with the RFC 9591 challenge (FROST secp256k1) and libsecp256k1's BIP340
verifier (Taproot).
"""

from __future__ import annotations

import hashlib
import itertools

import grpc
import pytest
from coincurve import PublicKey, PublicKeyXOnly
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from signer.client.verify import verify
from tests.enclave.frost import derivation_rule
from tests.service.conftest import all_ok, sid, status_of

ED = pb.PROTOCOL_FROST_ED25519
SECP = pb.PROTOCOL_FROST_SECP256K1
TR = pb.PROTOCOL_FROST_SECP256K1_TR
SUITE = {ED: "frost-ed25519", SECP: "frost-secp256k1", TR: "frost-secp256k1-tr"}
PROTOCOLS = [pytest.param(p, id=name) for p, name in SUITE.items()]


@pytest.fixture(scope="module")
def node_a(start_node):  # type: ignore[no-untyped-def]
    return start_node("derive-a")


@pytest.fixture(scope="module")
def node_b(start_node):  # type: ignore[no-untyped-def]
    return start_node("derive-b")


async def dkg(relay: Relay, protocol: int, parties: tuple[str, ...], threshold: int) -> pb.DKGResult:
    results = all_ok(await relay.run(SessionSpec("dkg", sid("dkg"), protocol, parties, threshold=threshold)))  # type: ignore[arg-type]
    keys = {(r.dkg.key_id, r.dkg.public_key, r.dkg.chain_code) for r in results.values()}
    assert len(keys) == 1, "every party reports the same key and chain code"
    first = next(iter(results.values())).dkg
    assert len(first.chain_code) == 32 and first.chain_code != bytes(32)
    return first


async def sign(
    relay: Relay,
    protocol: int,
    signers: tuple[str, ...],
    key_id: str,
    message: bytes,
    path: tuple[int, ...],
    root: bytes = b"",
) -> pb.SignResult:
    spec = SessionSpec(
        "sign",
        sid("sign"),
        protocol,  # type: ignore[arg-type]
        signers,
        key_id=key_id,
        message=message,
        derivation_path=path,
        taproot_merkle_root=root,
    )
    results = all_ok(await relay.run(spec))
    assert len({(r.sign.signature, r.sign.public_key) for r in results.values()}) == 1
    return next(iter(results.values())).sign


def check(protocol: int, public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verifies under `public_key` and under no other message."""
    assert verify(protocol, public_key, message, signature)
    assert not verify(protocol, public_key, message + b"!", signature)
    if protocol == ED:
        VerifyKey(public_key).verify(message, signature)  # libsodium, directly
    elif protocol == TR:
        assert PublicKeyXOnly(public_key).verify(signature, message)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_signing_with_a_path_names_and_verifies_under_the_derived_key(protocol, node_a, local, connect) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "derive-a": connect(node_a)})
    parties = ("client", "derive-a")
    key = await dkg(relay, protocol, parties, 2)
    seen = {key.public_key}
    for path in [(0,), (1,), (0, 7), (44, 2**31 - 1, 0, 3)]:
        message = f"derived along {path}".encode()
        result = await sign(relay, protocol, parties, key.key_id, message, path)
        expected, _ = derivation_rule.child_key(SUITE[protocol], key.public_key, key.chain_code, path)
        assert result.key_id == key.key_id and result.public_key == expected
        check(protocol, expected, message, result.signature)
        assert not verify(protocol, key.public_key, message, result.signature)
        seen.add(expected)
    assert len(seen) == 5
    # the empty path is the key itself
    result = await sign(relay, protocol, parties, key.key_id, b"root", ())
    assert result.public_key == key.public_key
    check(protocol, key.public_key, b"root", result.signature)


async def test_two_of_three_every_pair_signs_under_the_same_derived_key(node_a, node_b, local, connect) -> None:  # type: ignore[no-untyped-def]
    """Each party derives its share alone; any two of them sign for the same child key."""
    relay = Relay({"client": local, "derive-a": connect(node_a), "derive-b": connect(node_b)})
    parties = ("client", "derive-a", "derive-b")
    key = await dkg(relay, ED, parties, 2)
    path = (2, 5)
    expected, _ = derivation_rule.child_key(SUITE[ED], key.public_key, key.chain_code, path)
    for signers in itertools.combinations(parties, 2):
        message = f"signed by {signers}".encode()
        result = await sign(relay, ED, signers, key.key_id, message, path)
        assert result.public_key == expected
        check(ED, expected, message, result.signature)
        with pytest.raises(BadSignatureError):
            VerifyKey(key.public_key).verify(message, result.signature)


async def test_taproot_script_tree_under_a_derived_internal_key(node_a, local, connect) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "derive-a": connect(node_a)})
    parties = ("client", "derive-a")
    key = await dkg(relay, TR, parties, 2)
    path, root, message = (9,), bytes(range(32)), b"script tree, derived key"
    result = await sign(relay, TR, parties, key.key_id, message, path, root)
    internal, _ = derivation_rule.child_key(SUITE[TR], key.public_key, key.chain_code, path)
    tag = hashlib.sha256(b"TapTweak").digest()
    tweak = hashlib.sha256(tag + tag + internal + root).digest()
    output = PublicKey.combine_keys([PublicKey(b"\x02" + internal), PublicKey.from_secret(tweak)]).format()[1:]
    assert result.public_key == output
    check(TR, output, message, result.signature)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_bad_paths_are_refused_and_change_nothing(protocol, node_a, local, connect) -> None:  # type: ignore[no-untyped-def]
    signer = connect(node_a)
    relay = Relay({"client": local, "derive-a": signer})
    parties = ("client", "derive-a")
    key = await dkg(relay, protocol, parties, 2)

    def start(path: list[int]):  # type: ignore[no-untyped-def]
        return signer.start_sign(
            pb.StartSignRequest(
                session_id=sid("bad"),
                protocol=protocol,
                key_id=key.key_id,
                message=b"m",
                party_ids=parties,
                self_party_id="derive-a",
                derivation_path=path,
            )
        )

    for path in ([2**31], [0, 2**32 - 1], [0] * 17):
        code, message = await status_of(start(path))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "non-hardened" in message, (path, code, message)
    # nothing was started or stored by the refusals: the key still signs, derived
    result = await sign(relay, protocol, parties, key.key_id, b"after", (1,))
    check(protocol, result.public_key, b"after", result.signature)
