"""A ZF frost client (frost_rs) as a party through the real service: the signer nodes are real
enclave processes behind real signers over mTLS, the relay is the SDK's, and the client is
frost_rs wrapped in the payload contract of proto/mpc/v1/signer.proto ("FROST payloads") by
tests/service/zf_party.py, which implements it from that text alone.

Every signature, frost_rs's aggregate and the service's, is checked outside this project's
code: Ed25519 by libsodium (PyNaCl), FROST(secp256k1) by the RFC 9591 equation z*G == R + c*P on
libsecp256k1 points (coincurve) with the challenge c = H2(R || P || m) computed here with
hashlib (RFC 9591 section 6.5, RFC 9380 expand_message_xmd). frost_rs has no Taproot module, so
Taproot is not covered here.
"""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.relay import Relay
from signer.client.spec import Outcome, SessionSpec
from tests.service.conftest import all_ok, sid
from tests.service.zf_party import SECP256K1_ORDER, SUITES, ZfKey, ZfNode, b64, zf

ED = pb.PROTOCOL_FROST_ED25519
SECP = pb.PROTOCOL_FROST_SECP256K1
PROTOCOLS = [pytest.param(ED, id="frost-ed25519"), pytest.param(SECP, id="frost-secp256k1")]


# -- independent verifiers ------------------------------------------------------------------------


def _expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-256."""
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha256(bytes(64) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    blocks = [hashlib.sha256(b0 + b"\x01" + dst_prime).digest()]
    while len(blocks) * 32 < length:
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1], strict=True))
        blocks.append(hashlib.sha256(mixed + bytes([len(blocks) + 1]) + dst_prime).digest())
    return b"".join(blocks)[:length]


def secp256k1_frost_verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 9591 verify for FROST(secp256k1, SHA-256): z*G == R + H2(R || P || m)*P."""
    if len(signature) != 65 or len(public_key) != 33:
        return False
    r, z = signature[:33], int.from_bytes(signature[33:], "big")
    if not 0 < z < SECP256K1_ORDER:
        return False
    dst = b"FROST-secp256k1-SHA256-v1chal"
    c = int.from_bytes(_expand_message_xmd(r + public_key + message, dst, 48), "big") % SECP256K1_ORDER
    lhs = PublicKey.from_secret(z.to_bytes(32, "big"))
    rhs = PublicKey.combine_keys([PublicKey(r), PublicKey(public_key).multiply(c.to_bytes(32, "big"))])
    return lhs.format() == rhs.format()


def ed25519_verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(public_key).verify(message, signature)
    except BadSignatureError:
        return False
    return True


def verifies(protocol: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
    check = ed25519_verifies if protocol == ED else secp256k1_frost_verifies
    return check(public_key, message, signature)


# -- sessions -------------------------------------------------------------------------------------


async def zf_dkg(relay: Relay, client: ZfNode, protocol: int, parties: tuple[str, ...]) -> ZfKey:
    """A 2-of-n DKG with the ZF client among the parties; every party ends with the same key."""
    results = all_ok(await relay.run(SessionSpec("dkg", sid("zf-dkg"), protocol, parties, threshold=2)))  # type: ignore[arg-type]
    signers = {p: r.dkg for p, r in results.items() if p != "client"}
    key_ids = {r.key_id for r in signers.values()}
    assert len(key_ids) == 1 and len({r.public_key for r in signers.values()}) == 1
    group_key = results["client"].dkg.public_key
    assert all(r.public_key == group_key for r in signers.values()), "frost_rs and the enclaves disagree"
    assert len(group_key) == (32 if protocol == ED else 33)
    return client.adopt(key_ids.pop(), group_key)


async def zf_sign(relay: Relay, key_id: str, key: ZfKey, signers: tuple[str, ...], message: bytes) -> None:
    spec = SessionSpec("sign", sid("zf-sign"), key.protocol, signers, key_id=key_id, message=message)  # type: ignore[arg-type]
    results = all_ok(await relay.run(spec))
    signatures = {p: r.sign.signature for p, r in results.items()}
    assert len(set(signatures.values())) == 1, signatures  # frost_rs aggregated the same bytes
    for party, signature in signatures.items():
        assert verifies(key.protocol, key.public_key, message, signature), party
        assert not verifies(key.protocol, key.public_key, message + b"!", signature)
        assert results[party].sign.public_key == key.public_key
    assert zf(SUITES[key.protocol].module.verify, message, key.public_key_package, b64(signatures[signers[0]]))


def key_id_of(client: ZfNode, key: ZfKey) -> str:
    return next(k for k, v in client.keys.items() if v is key)


def failure(outcome: Outcome) -> pb.SessionFailure:
    assert outcome.state == pb.SESSION_STATE_FAILED and outcome.failure is not None, outcome
    return outcome.failure


@pytest.fixture(scope="module")
def node_a(start_node):  # type: ignore[no-untyped-def]
    return start_node("zf-a")


@pytest.fixture(scope="module")
def node_b(start_node):  # type: ignore[no-untyped-def]
    return start_node("zf-b")


# -- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_zf_client_two_of_two_dkg_then_sign(protocol, node_a, ring: HmacKeyRing, connect, clients) -> None:  # type: ignore[no-untyped-def]
    """frost_rs and one signer make a key, then sign with it: over unary calls and over an
    Exchange stream, the client both first and second in the party list."""
    client = ZfNode(ring)
    for parties, signer in ((("client", "zf-a"), connect(node_a)), (("zf-a", "client"), clients(node_a))):
        relay = Relay({"client": client, "zf-a": signer})
        key = await zf_dkg(relay, client, protocol, parties)
        for message in (b"zf client through the service", b"", b"x" * 5000):
            await zf_sign(relay, key_id_of(client, key), key, parties, message)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_zf_client_two_of_three(protocol, node_a, node_b, ring: HmacKeyRing, connect) -> None:  # type: ignore[no-untyped-def]
    """The client in the middle of three (echo vectors of three, identifier 2); every pair
    signs, including the two signers without it and the client with either."""
    client = ZfNode(ring)
    relay = Relay({"client": client, "zf-a": connect(node_a), "zf-b": connect(node_b)})
    key = await zf_dkg(relay, client, protocol, ("zf-a", "client", "zf-b"))
    key_id = key_id_of(client, key)
    for signers in (("client", "zf-b"), ("zf-a", "client"), ("zf-b", "zf-a")):
        await zf_sign(relay, key_id, key, signers, f"signed by {signers}".encode())


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_zf_client_with_a_tampered_dkg_share_is_named(protocol, node_a, ring: HmacKeyRing, connect) -> None:  # type: ignore[no-untyped-def]
    """A well-encrypted round-2 share off by one fails the Feldman check against the client's
    commitment: the signer's DKG fails naming the client, and stores no key."""
    relay = Relay({"client": ZfNode(ring, tamper="dkg-share"), "zf-a": connect(node_a)})
    outcomes = await relay.run(SessionSpec("dkg", sid("zf-bad-dkg"), protocol, ("client", "zf-a"), threshold=2))  # type: ignore[arg-type]
    failed = failure(outcomes["zf-a"])
    assert list(failed.culprits) == ["client"]
    assert failed.reason == "secret share does not match the sender's commitment"
    assert outcomes["zf-a"].result is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_zf_client_with_a_tampered_signature_share_is_named(protocol, node_a, ring: HmacKeyRing, connect) -> None:  # type: ignore[no-untyped-def]
    """An honest key, then a signature share off by one: the signer's session fails naming the
    client and returns no signature; the same key still signs with an honest client."""
    honest = ZfNode(ring)
    relay = Relay({"client": honest, "zf-a": connect(node_a)})
    parties = ("client", "zf-a")
    key = await zf_dkg(relay, honest, protocol, parties)
    key_id = key_id_of(honest, key)
    cheat = ZfNode(ring, tamper="sign-share")
    cheat.keys[key_id] = key
    spec = SessionSpec("sign", sid("zf-bad-sign"), protocol, parties, key_id=key_id, message=b"m")  # type: ignore[arg-type]
    outcomes = await Relay({"client": cheat, "zf-a": connect(node_a)}).run(spec)
    failed = failure(outcomes["zf-a"])
    assert list(failed.culprits) == ["client"] and failed.reason == "invalid signature share"
    assert outcomes["zf-a"].result is None
    assert failure(outcomes["client"]).reason.startswith("ZfFailure: frost_rs aggregate")
    await zf_sign(relay, key_id, key, parties, b"m")


@pytest.mark.parametrize("kind", ["dkg", "sign"])
async def test_zf_client_with_a_false_echo_is_named(kind, node_a, ring: HmacKeyRing, connect) -> None:  # type: ignore[no-untyped-def]
    """The client's round-2 echo misreports the signer's own round-1 broadcast (the last party
    in the list): the signer knows what it sent, so it names the client (the contract's rule),
    in a DKG (direct messages) and in a signature (broadcasts)."""
    parties = ("client", "zf-a")
    cheat = ZfNode(ring, tamper="echo")
    if kind == "dkg":
        spec = SessionSpec("dkg", sid("zf-echo"), ED, parties, threshold=2)
    else:
        honest = ZfNode(ring)
        key = await zf_dkg(Relay({"client": honest, "zf-a": connect(node_a)}), honest, ED, parties)
        key_id = key_id_of(honest, key)
        cheat.keys[key_id] = key
        spec = SessionSpec("sign", sid("zf-echo"), ED, parties, key_id=key_id, message=b"m")
    outcomes = await Relay({"client": cheat, "zf-a": connect(node_a)}).run(spec)
    failed = failure(outcomes["zf-a"])
    assert list(failed.culprits) == ["client"] and failed.reason == "broadcast inconsistency"
    assert outcomes["zf-a"].result is None
