"""A misbehaving participant ends the session with an abort naming exactly that participant.

Every run goes through the real Driver via tests.harness; nothing may escape as an exception.
Signing is 2-of-3 with all three signing unless noted; party 3 is the adversary.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.protocols.frost import dkg, signing, wire
from enclave.protocols.frost.ciphersuite import GROUP, HEADER
from enclave.protocols.rounds import Abort, Frame, Kind
from enclave.rng import SYSTEM_RNG
from tests import harness
from tests.enclave.frost.common import dealer, dkg_drivers, libsodium_verify, sign_drivers

L = GROUP.order
IDENTITY = GROUP.identity()
SMALL_ORDER = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
NON_CANONICAL = (2**255 - 19 + 1).to_bytes(32, "little")
MIXED_ORDER = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")  # order 8


def _mixed() -> bytes:
    from nacl.bindings import crypto_core_ed25519_add

    return crypto_core_ed25519_add(GROUP.base_mul(12345), SMALL_ORDER)


def _honest_aborts(res: harness.Result, honest: list[int], culprits: set[int], reason: str | None = None) -> None:
    for p in honest:
        out = res.outcomes[p]
        assert isinstance(out, Abort), f"party {p} did not abort: {out!r}"
        assert out.culprits == frozenset(culprits), (p, out)
        if reason is not None:
            assert out.reason == reason, (p, out)


def _signing(rules: list[harness.Rule], signers: tuple[int, ...] = (1, 2, 3)) -> harness.Result:
    kps, public = dealer(3, 2)
    return harness.run(sign_drivers(kps, public, list(signers), b"adversarial"), rules)


def _replace_hiding(point: bytes) -> Callable[[bytes], bytes]:
    return lambda body: body[:5] + point + body[37:]


def _replace_binding(point: bytes) -> Callable[[bytes], bytes]:
    return lambda body: body[:37] + point


@pytest.mark.parametrize("point", [IDENTITY, SMALL_ORDER, NON_CANONICAL, MIXED_ORDER, b"mixed"])
@pytest.mark.parametrize("which", ["hiding", "binding"])
def test_bad_nonce_commitment_point(point: bytes, which: str) -> None:
    point = _mixed() if point == b"mixed" else point
    fn = _replace_hiding(point) if which == "hiding" else _replace_binding(point)
    res = _signing([harness.modify(3, 1, fn)])
    _honest_aborts(res, [1, 2], {3}, "malformed or invalid nonce commitments")


def test_truncated_and_garbage_commitments() -> None:
    for fn in (lambda b: b[:-1], lambda b: b + b"\x00", lambda b: b"\x01" + b[1:], lambda b: b"garbage"):
        res = _signing([harness.modify(3, 1, fn)])
        _honest_aborts(res, [1, 2], {3}, "malformed or invalid nonce commitments")


def test_signature_share_scalar_not_reduced() -> None:
    res = _signing([harness.modify(3, 2, lambda b: (int.from_bytes(b, "little") + L).to_bytes(32, "little"))])
    _honest_aborts(res, [1, 2], {3}, "malformed signature share")
    res = _signing([harness.modify(3, 2, lambda b: b"\xff" * 32)])
    _honest_aborts(res, [1, 2], {3}, "malformed signature share")


def test_wrong_signature_share() -> None:
    bump = lambda b: ((int.from_bytes(b, "little") + 1) % L).to_bytes(32, "little")  # noqa: E731
    res = _signing([harness.modify(3, 2, bump)])
    _honest_aborts(res, [1, 2], {3}, "invalid signature share")
    # a share sent only to party 1 is wrong: only party 1 sees it, and party 1 names 3 alone
    res = _signing([harness.modify(3, 2, bump, to=1)])
    _honest_aborts(res, [1], {3}, "invalid signature share")
    assert isinstance(res.outcomes[2], Abort) is False


def test_equivocated_commitments_detected_by_echo() -> None:
    other = wire.encode_signing_commitments(signing.commit(77, SYSTEM_RNG).commitments)
    res = _signing([harness.equivocate(3, 1, 2, lambda b: other)])
    _honest_aborts(res, [1, 2], {3}, "broadcast inconsistency")


def test_reused_nonce_commitment_within_session() -> None:
    captured: dict[str, bytes] = {}

    def copy_party1(s: int, r: int, frame: Frame) -> list[Frame | bytes] | None:
        if frame.round == 1 and s == 1:
            captured["c"] = frame.body
        if frame.round == 1 and s == 3 and "c" in captured:
            return [Frame(1, frame.kind, frame.echo, captured["c"])]
        return None

    res = _signing([copy_party1])
    out = res.outcomes[1]
    assert isinstance(out, Abort) and out.culprits == frozenset({3}) and out.reason == "reused nonce commitment"


def test_reused_nonce_commitment_across_sessions() -> None:
    kps, public = dealer(3, 2)
    used = {p: set[bytes]() for p in (1, 2, 3)}
    first: dict[int, bytes] = {}

    def record(s: int, r: int, frame: Frame) -> None:
        if frame.round == 1:
            first[s] = frame.body

    res = harness.run(sign_drivers(kps, public, [1, 2, 3], b"one", b"s1", used), [record])
    sig = res.outputs()[1]
    libsodium_verify(public.verifying_key, b"one", sig)  # type: ignore[arg-type]
    replay = harness.modify(3, 1, lambda body: first[3])
    res = harness.run(sign_drivers(kps, public, [1, 2, 3], b"two", b"s2", used), [replay])
    _honest_aborts(res, [1, 2], {3}, "reused nonce commitment")


def test_duplicate_message_and_unknown_sender() -> None:
    res = _signing([harness.duplicate(3, 1, to=1)])
    _honest_aborts(res, [1], {3}, "duplicate message")
    kps, public = dealer(3, 2)
    drivers = sign_drivers(kps, public, [1, 2], b"outsider")
    junk = Frame(1, Kind.BROADCAST, (), HEADER + bytes(64)).encode()
    res = harness.run(drivers, inject=[(3, 1, junk), (99, 2, junk)])
    assert res.rejected == [(1, 3), (2, 99)]
    sig = res.outputs()[1]
    libsodium_verify(public.verifying_key, b"outsider", sig)  # type: ignore[arg-type]


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x00\x01\x00\x00\x00" + b"z" * 40, bytes(200)])
def test_garbage_frames(data: bytes) -> None:
    res = _signing([harness.garbage(3, 1, data)])
    _honest_aborts(res, [1, 2], {3})


# -- DKG ----------------------------------------------------------------------------------------


def _dkg(rules: list[harness.Rule], n: int = 3, t: int = 2) -> harness.Result:
    return harness.run(dkg_drivers(n, t), rules)


def test_dkg_bad_proof_of_knowledge() -> None:
    def bump_z(body: bytes) -> bytes:
        pkg, tail = body[:-32], body[-32:]
        z = (int.from_bytes(pkg[-32:], "little") + 1) % L
        return pkg[:-32] + z.to_bytes(32, "little") + tail

    res = _dkg([harness.modify(3, 1, bump_z)])
    _honest_aborts(res, [1, 2], {3}, "invalid proof of knowledge")


def test_dkg_wrong_commitment_length_and_bad_points() -> None:
    res = _dkg([harness.modify(3, 1, lambda b: b[:5] + b"\x01" + b[6:38] + b[70:])])
    _honest_aborts(res, [1, 2], {3})
    res = _dkg([harness.modify(3, 1, lambda b: b[:6] + SMALL_ORDER + b[38:])])
    _honest_aborts(res, [1, 2], {3}, "malformed round-1 package")
    res = _dkg([harness.modify(3, 1, lambda b: b[:-32] + IDENTITY)])  # encryption key
    _honest_aborts(res, [1, 2], {3}, "malformed round-1 package")


def test_dkg_share_not_matching_commitment(monkeypatch: pytest.MonkeyPatch) -> None:
    honest_share = dkg.share_for

    def cheat(secret: dkg.Round1Secret, recipient: int) -> int:
        value = honest_share(secret, recipient)
        return (value + 1) % L if secret.identifier == 3 and recipient == 1 else value

    monkeypatch.setattr(dkg, "share_for", cheat)
    res = _dkg([])
    _honest_aborts(res, [1], {3}, "secret share does not match the sender's commitment")
    assert not isinstance(res.outcomes[2], Abort)


def test_dkg_tampered_ciphertext_and_equivocation() -> None:
    res = _dkg([harness.modify(3, 2, lambda b: b[:-1] + bytes([b[-1] ^ 1]), to=1)])
    _honest_aborts(res, [1], {3}, "encrypted share does not authenticate")
    other_drivers = dkg_drivers(3, 2, session=b"another")
    other_body = Frame.decode(other_drivers[2].take_outgoing()[0].payload).body
    res = _dkg([harness.equivocate(3, 1, 1, lambda b: other_body)])
    _honest_aborts(res, [1, 2], {3}, "broadcast inconsistency")


def test_dkg_duplicate_garbage_and_replayed_ciphertext() -> None:
    res = _dkg([harness.duplicate(2, 1, to=1)])
    _honest_aborts(res, [1], {2}, "duplicate message")
    res = _dkg([harness.garbage(2, 2, b"\x01\x00\x02\x01\x00\x00", to=1)])
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

    res = _dkg([forward])
    _honest_aborts(res, [2], {3}, "encrypted share does not authenticate")


@pytest.mark.parametrize("point", [IDENTITY, SMALL_ORDER, NON_CANONICAL])
def test_dkg_bad_proof_commitment_point(point: bytes) -> None:
    # R of the proof of knowledge sits before z and the 32-byte encryption key
    res = _dkg([harness.modify(3, 1, lambda b: b[:-96] + point + b[-64:])])
    _honest_aborts(res, [1, 2], {3}, "invalid proof of knowledge")


_PROP_KEYS = dealer(3, 2)


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
    res = harness.run(sign_drivers(kps, public, [1, 2, 3], b"property"), [flip])
    out = res.outcomes[1]
    assert isinstance(out, Abort), out
    # A flip inside party 3's echo about party 2's broadcast is party 3 accusing party 2: the
    # documented limit of echo-by-hash (tests/enclave/test_rounds.py); otherwise exactly {3}.
    assert out.culprits == frozenset({3}) or (out.culprits == frozenset({2}) and out.accusers == frozenset({3}))
