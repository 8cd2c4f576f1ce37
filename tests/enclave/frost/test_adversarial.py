"""A misbehaving participant ends the session with an abort naming exactly that participant.

Every run goes through the real Driver via tests.harness; nothing may escape as an exception.
Signing is 2-of-3 with all three signing unless noted; party 3 is the adversary. Tests taking
the `suite` fixture run for every ciphersuite, with that suite's malformed points.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidEncoding
from enclave.group.secp256k1 import FIELD_PRIME
from enclave.protocols.driver import Abort, Frame, Kind
from enclave.protocols.frost import dkg, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519, Ciphersuite
from tests import harness
from tests.enclave.frost.common import dealer, dkg_drivers, sign_drivers, verify_independently

ED = FROST_ED25519
IDENTITY = ED.group.identity()
SMALL_ORDER = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
NON_CANONICAL = (2**255 - 19 + 1).to_bytes(32, "little")
MIXED_ORDER = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")  # order 8


def _mixed() -> bytes:
    from nacl.bindings import crypto_core_ed25519_add

    return crypto_core_ed25519_add(ED.group.base_mul(12345), SMALL_ORDER)


def _off_curve_x() -> bytes:
    """The smallest x with no secp256k1 point (x^3 + 7 not a square mod p)."""
    from enclave.group.secp256k1 import SECP256K1

    for x in range(1, 100):
        try:
            SECP256K1.decode(b"\x02" + x.to_bytes(32, "big"))
        except InvalidEncoding:
            return x.to_bytes(32, "big")
    raise AssertionError("no off-curve x below 100")


def bad_points(cs: Ciphersuite) -> list[bytes]:
    """Five encodings of the suite's element length that `decode` must refuse."""
    if cs is ED:
        return [IDENTITY, SMALL_ORDER, NON_CANONICAL, MIXED_ORDER, _mixed()]
    g = cs.group.encode(cs.group.generator())
    return [
        b"\x02" + _off_curve_x(),  # not on the curve
        b"\x03" + _off_curve_x(),
        b"\x02" + FIELD_PRIME.to_bytes(32, "big"),  # x >= p
        b"\x04" + g[1:],  # not a compressed prefix
        b"\x00" * 33,  # the SEC1 identity padded: no point
    ]


def _scalar_bump(cs: Ciphersuite, delta: int) -> Callable[[bytes], bytes]:
    return lambda b: cs.group.encode_scalar((cs.group.decode_scalar(b) + delta) % cs.order)


def _honest_aborts(res: harness.Result, honest: list[int], culprits: set[int], reason: str | None = None) -> None:
    for p in honest:
        out = res.outcomes[p]
        assert isinstance(out, Abort), f"party {p} did not abort: {out!r}"
        assert out.culprits == frozenset(culprits), (p, out)
        if reason is not None:
            assert out.reason == reason, (p, out)


def _signing(cs: Ciphersuite, rules: list[harness.Rule], signers: tuple[int, ...] = (1, 2, 3)) -> harness.Result:
    kps, public = dealer(cs, 3, 2)
    return harness.run(sign_drivers(cs, kps, public, list(signers), b"adversarial"), rules)


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize("which", ["hiding", "binding"])
def test_bad_nonce_commitment_point(suite: Ciphersuite, index: int, which: str) -> None:
    point, n = bad_points(suite)[index], suite.element_len

    def fn(body: bytes) -> bytes:
        return body[:5] + point + body[5 + n :] if which == "hiding" else body[: 5 + n] + point

    res = _signing(suite, [harness.modify(3, 1, fn)])
    _honest_aborts(res, [1, 2], {3}, "malformed or invalid nonce commitments")


def test_truncated_and_garbage_commitments(suite: Ciphersuite) -> None:
    for fn in (lambda b: b[:-1], lambda b: b + b"\x00", lambda b: b"\x01" + b[1:], lambda b: b"garbage"):
        res = _signing(suite, [harness.modify(3, 1, fn)])
        _honest_aborts(res, [1, 2], {3}, "malformed or invalid nonce commitments")


def test_signature_share_scalar_not_reduced(suite: Ciphersuite) -> None:
    def unreduced(b: bytes) -> bytes:
        value = suite.group.decode_scalar(b) + suite.order
        return value.to_bytes(32, "little" if suite is ED else "big") if value < 2**256 else b"\xff" * 32

    res = _signing(suite, [harness.modify(3, 2, unreduced)])
    _honest_aborts(res, [1, 2], {3}, "malformed signature share")
    res = _signing(suite, [harness.modify(3, 2, lambda b: b"\xff" * 32)])
    _honest_aborts(res, [1, 2], {3}, "malformed signature share")


def test_wrong_signature_share(suite: Ciphersuite) -> None:
    bump = _scalar_bump(suite, 1)
    res = _signing(suite, [harness.modify(3, 2, bump)])
    _honest_aborts(res, [1, 2], {3}, "invalid signature share")
    # a share sent only to party 1 is wrong: only party 1 sees it, and party 1 names 3 alone
    res = _signing(suite, [harness.modify(3, 2, bump, to=1)])
    _honest_aborts(res, [1], {3}, "invalid signature share")
    assert isinstance(res.outcomes[2], Abort) is False


def test_negated_signature_share_is_caught(suite: Ciphersuite) -> None:
    """The BIP340 sign flips (odd key, odd R) must not let a negated share pass."""
    res = _signing(
        suite, [harness.modify(3, 2, lambda b: suite.group.encode_scalar(-suite.group.decode_scalar(b) % suite.order))]
    )
    _honest_aborts(res, [1, 2], {3}, "invalid signature share")


def test_equivocated_commitments_detected_by_echo(suite: Ciphersuite) -> None:
    other = wire.encode_signing_commitments(suite, signing.commit(suite, 77, SYSTEM_RNG).commitments)
    res = _signing(suite, [harness.equivocate(3, 1, 2, lambda b: other)])
    _honest_aborts(res, [1, 2], {3}, "broadcast inconsistency")


def test_reused_nonce_commitment_within_session(suite: Ciphersuite) -> None:
    captured: dict[str, bytes] = {}

    def copy_party1(s: int, r: int, frame: Frame) -> list[Frame | bytes] | None:
        if frame.round == 1 and s == 1:
            captured["c"] = frame.body
        if frame.round == 1 and s == 3 and "c" in captured:
            return [Frame(1, frame.kind, frame.echo, captured["c"])]
        return None

    res = _signing(suite, [copy_party1])
    out = res.outcomes[1]
    assert isinstance(out, Abort) and out.culprits == frozenset({3}) and out.reason == "reused nonce commitment"


def test_reused_nonce_commitment_across_sessions(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 3, 2)
    used = {p: set[bytes]() for p in (1, 2, 3)}
    first: dict[int, bytes] = {}

    def record(s: int, r: int, frame: Frame) -> None:
        if frame.round == 1:
            first[s] = frame.body

    res = harness.run(sign_drivers(suite, kps, public, [1, 2, 3], b"one", b"s1", used), [record])
    sig = res.outputs()[1]
    verify_independently(suite, public.verifying_key, b"one", sig)  # type: ignore[arg-type]
    replay = harness.modify(3, 1, lambda body: first[3])
    res = harness.run(sign_drivers(suite, kps, public, [1, 2, 3], b"two", b"s2", used), [replay])
    _honest_aborts(res, [1, 2], {3}, "reused nonce commitment")


def test_duplicate_message_and_unknown_sender(suite: Ciphersuite) -> None:
    res = _signing(suite, [harness.duplicate(3, 1, to=1)])
    _honest_aborts(res, [1], {3}, "duplicate message")
    kps, public = dealer(suite, 3, 2)
    drivers = sign_drivers(suite, kps, public, [1, 2], b"outsider")
    junk = Frame(1, Kind.BROADCAST, (), suite.header + bytes(2 * suite.element_len)).encode()
    res = harness.run(drivers, inject=[(3, 1, junk), (99, 2, junk)])
    assert res.rejected == [(1, 3), (2, 99)]
    sig = res.outputs()[1]
    verify_independently(suite, public.verifying_key, b"outsider", sig)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x00\x01\x00\x00\x00" + b"z" * 40, bytes(200)])
def test_garbage_frames(data: bytes) -> None:
    res = _signing(ED, [harness.garbage(3, 1, data)])
    _honest_aborts(res, [1, 2], {3})


# -- DKG ----------------------------------------------------------------------------------------


def _dkg(cs: Ciphersuite, rules: list[harness.Rule], n: int = 3, t: int = 2) -> harness.Result:
    return harness.run(dkg_drivers(cs, n, t), rules)


def test_dkg_bad_proof_of_knowledge(suite: Ciphersuite) -> None:
    n = suite.element_len

    def bump_z(body: bytes) -> bytes:
        pkg, tail = body[:-n], body[-n:]
        return pkg[:-32] + _scalar_bump(suite, 1)(pkg[-32:]) + tail

    res = _dkg(suite, [harness.modify(3, 1, bump_z)])
    _honest_aborts(res, [1, 2], {3}, "invalid proof of knowledge")


def test_dkg_wrong_commitment_length_and_bad_points(suite: Ciphersuite) -> None:
    n = suite.element_len
    # t=2: header 5 || 0x02 || phi_0 || phi_1 || ...; drop phi_1 and claim one coefficient
    res = _dkg(suite, [harness.modify(3, 1, lambda b: b[:5] + b"\x01" + b[6 : 6 + n] + b[6 + 2 * n :])])
    _honest_aborts(res, [1, 2], {3})
    for point in bad_points(suite):
        res = _dkg(suite, [harness.modify(3, 1, lambda b, p=point: b[:6] + p + b[6 + n :])])  # type: ignore[misc]
        _honest_aborts(res, [1, 2], {3}, "malformed round-1 package")
        res = _dkg(suite, [harness.modify(3, 1, lambda b, p=point: b[:-n] + p)])  # type: ignore[misc]
        _honest_aborts(res, [1, 2], {3}, "malformed round-1 package")  # encryption key


def test_dkg_share_not_matching_commitment(suite: Ciphersuite, monkeypatch: pytest.MonkeyPatch) -> None:
    honest_share = dkg.share_for

    def cheat(cs: Ciphersuite, secret: dkg.Round1Secret, recipient: int) -> int:
        value = honest_share(cs, secret, recipient)
        return (value + 1) % cs.order if secret.identifier == 3 and recipient == 1 else value

    monkeypatch.setattr(dkg, "share_for", cheat)
    res = _dkg(suite, [])
    _honest_aborts(res, [1], {3}, "secret share does not match the sender's commitment")
    assert not isinstance(res.outcomes[2], Abort)


def test_dkg_tampered_ciphertext_and_equivocation(suite: Ciphersuite) -> None:
    res = _dkg(suite, [harness.modify(3, 2, lambda b: b[:-1] + bytes([b[-1] ^ 1]), to=1)])
    _honest_aborts(res, [1], {3}, "encrypted share does not authenticate")
    other_drivers = dkg_drivers(suite, 3, 2, session=b"another")
    other_body = Frame.decode(other_drivers[2].take_outgoing()[0].payload).body
    res = _dkg(suite, [harness.equivocate(3, 1, 1, lambda b: other_body)])
    _honest_aborts(res, [1, 2], {3}, "broadcast inconsistency")


def test_dkg_duplicate_garbage_and_replayed_ciphertext() -> None:
    res = _dkg(ED, [harness.duplicate(2, 1, to=1)])
    _honest_aborts(res, [1], {2}, "duplicate message")
    res = _dkg(ED, [harness.garbage(2, 2, b"\x01\x00\x02\x01\x00\x00", to=1)])
    out = res.outcomes[1]
    assert isinstance(out, Abort) and out.culprits == frozenset({2})
    # the relay hands party 2 the ciphertext party 3 addressed to party 1 (recipient is in the AD)
    stolen: dict[str, bytes] = {}

    def forward(s: int, r: int, frame: Frame) -> list[Frame | bytes] | None:
        if frame.round == 2 and s == 3 and r == 1:
            stolen["ct"] = frame.body
        if frame.round == 2 and s == 3 and r == 2 and "ct" in stolen:
            return [Frame(2, frame.kind, frame.echo, stolen["ct"])]
        return None

    res = _dkg(ED, [forward])
    _honest_aborts(res, [2], {3}, "encrypted share does not authenticate")


def test_dkg_bad_proof_commitment_point(suite: Ciphersuite) -> None:
    # R of the proof of knowledge sits before z (32) and the encryption key (one element);
    # Taproot carries x(R) only (32 bytes), so a bad "point" there is an x with no curve point.
    n = suite.element_len
    r_len = suite.signature_len - 32
    points = [b"\x00" * 32, _off_curve_x()] if suite.bip340 else bad_points(suite)
    for point in points:
        res = _dkg(suite, [harness.modify(3, 1, lambda b, p=point: b[: -(32 + n + r_len)] + p + b[-(32 + n) :])])  # type: ignore[misc]
        _honest_aborts(res, [1, 2], {3}, "invalid proof of knowledge")


_PROP_KEYS = dealer(ED, 3, 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 2), st.integers(0, 400), st.integers(1, 255))
def test_any_corrupted_byte_aborts_naming_the_sender(rnd: int, pos: int, xor: int) -> None:
    """Flip one byte anywhere in party 3's frame (header, echo or body) to party 1."""

    def flip(s: int, r: int, frame: Frame) -> list[Frame | bytes] | None:
        if s != 3 or r != 1 or frame.round != rnd:
            return None
        raw = bytearray(frame.encode())
        i = pos % len(raw)
        raw[i] ^= xor
        return [bytes(raw)]

    kps, public = _PROP_KEYS
    res = harness.run(sign_drivers(ED, kps, public, [1, 2, 3], b"property"), [flip])
    out = res.outcomes[1]
    assert isinstance(out, Abort), out
    # A flip inside party 3's echo about party 2's broadcast is party 3 accusing party 2: the
    # documented limit of echo-by-hash (tests/enclave/test_driver.py); otherwise exactly {3}.
    assert out.culprits == frozenset({3}) or (out.culprits == frozenset({2}) and out.accusers == frozenset({3}))
