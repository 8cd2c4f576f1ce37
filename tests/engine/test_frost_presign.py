"""Preprocessed FROST nonces through the engine: a batch presigned in one round, then one-round
signatures from it, for Ed25519, secp256k1 and Taproot; single use, earlier boot, a host that
shows signers different commitment lists, the signer set, and ZF frost's aggregate over our
commitments and shares.

Signatures are checked independently: PyNaCl for Ed25519, coincurve with a challenge written
here from RFC 9591 for FROST(secp256k1) (z*G == R + c*P), coincurve's BIP340 verifier for
Taproot."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from coincurve import PublicKey, PublicKeyXOnly
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine, EngineConfig, blobs
from enclave.errors import RequestRejected
from enclave.protocols.driver import Frame
from enclave.protocols.frost.ciphersuite import FROST_ED25519, identifier_from_int
from mpc.v1 import enclave_pb2 as pb
from tests.enclave.frost.zf import b64, call, module, unb64
from tests.engine import relay

ED = pb.PROTOCOL_FROST_ED25519
SECP = pb.PROTOCOL_FROST_SECP256K1
TR = pb.PROTOCOL_FROST_SECP256K1_TR
SUITES = {ED: "ed25519", SECP: "secp256k1", TR: "secp256k1-tr"}
PARTIES = ("alice", "bob", "carol")
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-256 (what RFC 9591's secp256k1 suite hashes with)."""
    ell = (length + 31) // 32
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha256(bytes(64) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    out = b = hashlib.sha256(b0 + b"\x01" + dst_prime).digest()
    for i in range(2, ell + 1):
        b = hashlib.sha256(bytes(x ^ y for x, y in zip(b0, b, strict=True)) + bytes([i]) + dst_prime).digest()
        out += b
    return out[:length]


def verify_rfc_secp256k1(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """z*G == R + c*P, c = H2(R || P || m) of RFC 9591 section 6.5, with coincurve's points."""
    r, z = signature[:33], int.from_bytes(signature[33:], "big")
    c = int.from_bytes(_expand_message_xmd(r + public_key + message, b"FROST-secp256k1-SHA256-v1chal", 48), "big")
    c %= ORDER
    if not 0 < z < ORDER:
        return False
    lhs = PublicKey.from_secret(z.to_bytes(32, "big"))
    rhs = PublicKey.combine_keys([PublicKey(r), PublicKey(public_key).multiply(c.to_bytes(32, "big"))])
    return lhs.format() == rhs.format()


def check(protocol: int, public_key: bytes, message: bytes, signature: bytes) -> None:
    if protocol == ED:
        VerifyKey(public_key).verify(message, signature)
        with pytest.raises(BadSignatureError):
            VerifyKey(public_key).verify(message + b"x", signature)
    elif protocol == SECP:
        assert verify_rfc_secp256k1(public_key, message, signature)
        assert not verify_rfc_secp256k1(public_key, message + b"x", signature)
    else:
        assert PublicKeyXOnly(public_key).verify(signature, message)
        assert not PublicKeyXOnly(public_key).verify(signature, message + b"x")


def presign(sid: str, protocol: int, signers: tuple[str, ...], me: str, share: pb.SealedBlob, count: int):  # type: ignore[no-untyped-def]
    return pb.SessionStart(
        session_id=sid,
        protocol=protocol,  # type: ignore[arg-type]
        kind=pb.SESSION_KIND_PRESIGN,
        party_ids=list(signers),
        self_party_id=me,
        key_id=share.id,
        sealed_blobs=[share],
        presign_count=count,
    )


async def make_key(engines: dict[str, Engine], protocol: int, parties: tuple[str, ...]) -> dict[str, pb.SessionResult]:
    starts = {p: relay.dkg(f"dkg-{protocol}", protocol, parties, 2, p) for p in parties}
    return relay.results(await relay.run(engines, starts))


async def batch(engines, protocol, signers, shares, count, sid="pre"):  # type: ignore[no-untyped-def]
    starts = {p: presign(sid, protocol, signers, p, shares[p], count) for p in signers}
    res = relay.results(await relay.run(engines, starts))
    out = {p: list(r.sealed_presignatures) for p, r in res.items()}
    assert all(len(b) == count for b in out.values())
    for k in range(count):
        assert len({out[p][k].id for p in signers}) == 1, "an item's id is equal at every signer"
    assert all(b.kind == pb.SEALED_BLOB_KIND_FROST_NONCE for bs in out.values() for b in bs)
    assert len({b.id for b in out[signers[0]]}) == count
    return out


@pytest.fixture
def engines(tmp_path: Path, prime_source: FixtureSource):  # type: ignore[no-untyped-def]
    made = relay.make_engines(PARTIES, tmp_path, prime_source)
    yield made
    for e in made.values():
        e.close()


@pytest.mark.parametrize("protocol", [ED, SECP, TR], ids=list(SUITES.values()))
async def test_batch_then_one_round_signatures(engines: dict[str, Engine], protocol: int) -> None:
    keys = await make_key(engines, protocol, PARTIES)
    shares = {p: r.sealed_share for p, r in keys.items()}
    public_key = keys["alice"].public_key
    signers = ("alice", "carol")
    nonces = await batch(engines, protocol, signers, shares, 3)
    for k in range(3):
        message = f"preprocessed {k}".encode()
        starts = {
            p: relay.sign(f"s{k}", protocol, signers, p, shares[p], message, presignature=nonces[p][k]) for p in signers
        }
        updates = await relay.run(engines, starts)
        out = relay.results(updates)
        sig = out["alice"].signature
        assert out["carol"].signature == sig and out["alice"].public_key == public_key
        assert out["alice"].presignature_id == nonces["alice"][k].id
        check(protocol, public_key, message, sig)
    # one round: the start's outgoing message is the share, and the start that brings the
    # peer's share finishes DONE at once
    message = b"one call"
    more = await batch(engines, protocol, signers, shares, 1, sid="pre2")
    first = await engines["alice"].start(
        relay.sign("one", protocol, signers, "alice", shares["alice"], message, presignature=more["alice"][0])
    )
    assert first.state == relay.RUNNING and len(first.outgoing) == 1 and first.outgoing[0].round == 1
    frame = Frame.decode(first.outgoing[0].payload)
    assert len(frame.body) == 32 and len(frame.echo) == 1
    second = relay.sign("one", protocol, signers, "carol", shares["carol"], message, presignature=more["carol"][0])
    second.messages.extend(first.outgoing)
    done = await engines["carol"].start(second)
    assert done.state == relay.DONE, done.reason
    check(protocol, public_key, message, done.result.signature)
    if protocol == TR:  # a script tree's root is applied as in two-round signing
        from enclave.group.secp256k1 import SECP256K1
        from enclave.protocols.frost import taproot

        root = bytes(range(32))
        more = await batch(engines, protocol, signers, shares, 1, sid="pre-root")
        starts = {
            p: relay.sign("root", protocol, signers, p, shares[p], b"tree", presignature=more[p][0]) for p in signers
        }
        for s in starts.values():
            s.taproot_merkle_root = root
        out = relay.results(await relay.run(engines, starts))
        tweaked = taproot.tweaked_public_key(SECP256K1.encode(SECP256K1.lift_x(public_key)), root)[1:]
        assert out["alice"].public_key == tweaked
        check(TR, tweaked, b"tree", out["alice"].signature)


async def test_single_use_earlier_boot_and_signer_set(
    engines: dict[str, Engine], tmp_path: Path, prime_source: FixtureSource
) -> None:
    keys = await make_key(engines, ED, PARTIES)
    shares = {p: r.sealed_share for p, r in keys.items()}
    signers = ("alice", "bob")
    nonces = await batch(engines, ED, signers, shares, 3)
    starts = {p: relay.sign("use-1", ED, signers, p, shares[p], b"m", presignature=nonces[p][0]) for p in signers}
    relay.results(await relay.run(engines, starts))

    async def refused(engine: Engine, start: pb.SessionStart) -> RequestRejected:
        with pytest.raises(RequestRejected) as exc:
            await engine.start(start)
        assert engine.running() == 0
        return exc.value

    # a second use, under another session id and message: refused before any share exists
    again = await refused(
        engines["alice"],
        relay.sign("use-2", ED, signers, "alice", shares["alice"], b"other", presignature=nonces["alice"][0]),
    )
    assert again.code == pb.ERROR_CODE_FAILED_PRECONDITION and "already used" in again.message
    # consumed even though the session then fails: alice alone starts it, then it is aborted
    solo = relay.sign("solo", ED, signers, "alice", shares["alice"], b"m", presignature=nonces["alice"][1])
    assert (await engines["alice"].start(solo)).state == relay.RUNNING
    await engines["alice"].abort(pb.SessionAbort(session_id="solo"))
    solo.session_id = "solo-2"
    assert "already used" in (await refused(engines["alice"], solo)).message
    # another signer set than the batch's
    carol = relay.sign("set", ED, ("alice", "carol"), "alice", shares["alice"], b"m", presignature=nonces["alice"][2])
    wrong = await refused(engines["alice"], carol)
    assert wrong.code == pb.ERROR_CODE_INVALID_ARGUMENT and "another signer set" in wrong.message
    # another boot of alice's enclave (same durable key): the batch is unusable
    rebooted = Engine(engines["alice"]._sealer, config=EngineConfig(preparams_pool_size=1), prime_source=prime_source)
    try:
        late = relay.sign("late", ED, signers, "alice", shares["alice"], b"m", presignature=nonces["alice"][2])
        earlier = await refused(rebooted, late)
        assert earlier.code == pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT
    finally:
        rebooted.close()
    # a nonce blob is bound to its id: renamed, it fails authentication
    renamed = pb.SealedBlob()
    renamed.CopyFrom(nonces["alice"][2])
    renamed.id = nonces["alice"][1].id
    bad = relay.sign("renamed", ED, signers, "alice", shares["alice"], b"m", presignature=renamed)
    assert (await refused(engines["alice"], bad)).code == pb.ERROR_CODE_SEALED_BLOB_INVALID
    # refused requests: a derivation path, a count out of range
    path = relay.sign("path", ED, signers, "alice", shares["alice"], b"m", presignature=nonces["alice"][2], path=(1,))
    assert "derivation_path" in (await refused(engines["alice"], path)).message
    for count in (0, 101):
        big = presign("big", ED, signers, "alice", shares["alice"], count)
        assert "presign_count" in (await refused(engines["alice"], big)).message


async def test_different_commitment_lists_abort(engines: dict[str, Engine]) -> None:
    """A host that shows carol another commitment of bob than it showed alice: the ids differ,
    and a host that asks each to sign with its own gets an abort naming the sender, not a bad
    signature."""
    keys = await make_key(engines, SECP, PARTIES)
    shares = {p: r.sealed_share for p, r in keys.items()}
    signers = PARTIES
    cs_len = 5 + 2 * 33

    def tamper(to: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage | None:
        if to != "carol" or m.sender != "bob":
            return m
        # bob's first commitment replaced (as a lying relay could) by another valid one
        other = pb.EnclaveMessage()
        other.CopyFrom(m)
        frame = Frame.decode(m.payload)
        fake = _fresh_commitments(cs_len)
        other.payload = Frame(frame.round, frame.kind, frame.echo, fake + frame.body[cs_len:]).encode()
        return other

    starts = {p: presign("split", SECP, signers, p, shares[p], 2) for p in signers}
    res = relay.results(await relay.run(engines, starts, tamper))
    ids = {p: [b.id for b in r.sealed_presignatures] for p, r in res.items()}
    assert ids["alice"][0] == ids["bob"][0] != ids["carol"][0]
    assert ids["alice"][1] == ids["bob"][1] == ids["carol"][1], "only the tampered item differs"
    starts = {
        p: relay.sign("split-sign", SECP, signers, p, shares[p], b"m", presignature=res[p].sealed_presignatures[0])
        for p in signers
    }
    updates = await relay.run(engines, starts)
    for p in signers:
        assert updates[p].state == relay.FAILED
        assert updates[p].reason == "broadcast inconsistency"
    assert set(updates["alice"].culprits) == {"carol"}
    assert updates["carol"].culprits and set(updates["carol"].culprits) <= {"alice", "bob"}
    # the nonces were spent all the same
    with pytest.raises(RequestRejected):
        await engines["alice"].start(
            relay.sign(
                "split-2",
                SECP,
                signers,
                "alice",
                shares["alice"],
                b"m",
                presignature=res["alice"].sealed_presignatures[0],
            )
        )


def _fresh_commitments(size: int) -> bytes:
    from enclave.crypto.rng import SYSTEM_RNG
    from enclave.protocols.frost import signing, wire
    from enclave.protocols.frost.ciphersuite import FROST_SECP256K1

    nonces = signing.commit(FROST_SECP256K1, 12345, SYSTEM_RNG)
    body = wire.encode_signing_commitments(FROST_SECP256K1, nonces.commitments)
    assert len(body) == size
    return body


async def test_zf_frost_aggregates_our_commitments_and_shares(engines: dict[str, Engine]) -> None:
    """The presign broadcast is ZF SigningCommitments, the sign broadcast a ZF SignatureShare:
    frost_rs's aggregate takes them as they travel and makes the same, valid signature."""
    cs = FROST_ED25519
    keys = await make_key(engines, ED, PARTIES)
    shares = {p: r.sealed_share for p, r in keys.items()}
    signers = ("alice", "bob")
    index = {"alice": 1, "bob": 2}
    bodies: dict[str, bytes] = {}

    def keep(to: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
        bodies[m.sender] = Frame.decode(m.payload).body
        return m

    starts = {p: presign("zf-pre", ED, signers, p, shares[p], 2) for p in signers}
    res = relay.results(await relay.run(engines, starts, keep))
    size = len(cs.header) + 2 * cs.element_len
    zid = {p: b64(cs.encode_identifier(identifier_from_int(index[p]))) for p in signers}
    item = 1
    comms = {zid[p]: b64(bodies[p][item * size : (item + 1) * size]) for p in signers}
    bodies.clear()
    message = b"zf aggregate"
    starts = {
        p: relay.sign("zf-sign", ED, signers, p, shares[p], message, presignature=res[p].sealed_presignatures[item])
        for p in signers
    }
    out = relay.results(await relay.run(engines, starts, keep))
    zshares = {zid[p]: b64(bodies[p]) for p in signers}
    _, plaintext = blobs.unseal(
        engines["alice"]._sealer,
        shares["alice"].data,
        key_id=shares["alice"].id,
        protocol="frost-ed25519",
        purpose="share",
    )
    public_package = blobs.unpack(blobs.ShareRecord.decode(plaintext).share, 2)[1]
    zf_sig = unb64(call(module(cs).aggregate, message, comms, zshares, b64(public_package)))
    assert zf_sig == out["alice"].signature
    check(ED, keys["alice"].public_key, message, zf_sig)


async def test_bad_share_names_its_signer(engines: dict[str, Engine]) -> None:
    keys = await make_key(engines, ED, PARTIES)
    shares = {p: r.sealed_share for p, r in keys.items()}
    signers = ("alice", "bob")
    nonces = await batch(engines, ED, signers, shares, 1)

    def tamper(to: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
        if m.sender != "bob":
            return m
        frame = Frame.decode(m.payload)
        z = (FROST_ED25519.group.decode_scalar(frame.body) + 1) % FROST_ED25519.order
        bad = pb.EnclaveMessage()
        bad.CopyFrom(m)
        bad.payload = Frame(frame.round, frame.kind, frame.echo, FROST_ED25519.group.encode_scalar(z)).encode()
        return bad

    starts = {p: relay.sign("bad-z", ED, signers, p, shares[p], b"m", presignature=nonces[p][0]) for p in signers}
    updates = await relay.run(engines, starts, tamper)
    assert updates["alice"].state == relay.FAILED and updates["alice"].reason == "invalid signature share"
    assert list(updates["alice"].culprits) == ["bob"]
