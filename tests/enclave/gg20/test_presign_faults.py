"""Presign under attack (key 2-of-3, all three sign so two honest parties judge each fault)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cbor2
import pytest

from enclave.crypto.rng import SYSTEM_RNG
from enclave.group.secp256k1 import Secp256k1Group
from enclave.protocols.driver import Driver, Frame, Kind, echo_digest
from enclave.protocols.gg20 import presign
from enclave.protocols.gg20.common import proof_transcript
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.zk import enc, wire
from tests.enclave.gg20.conftest import check_signature, digest_of, run_presign, run_sign
from tests.enclave.gg20.faults import assert_named, edit, edit_proof
from tests.harness import Result, modify, run

SIGNERS = (1, 2, 3)


def test_enc_k_out_of_range_with_an_honest_proof(keys_2of3: dict[int, KeyShare]) -> None:
    # Party 2 encrypts a k far outside ±2^ℓ and proves Πenc for it with its real key: the proof
    # is computed honestly, so only the verifier's range check catches it.
    sid = b"ps-enc-range"
    evil = keys_2of3[2].paillier
    big_k = 1 << 900
    k_enc, rho = evil.encrypt(big_k, SYSTEM_RNG)

    def rule(sender: int, recipient: int, frame: Frame) -> list[Frame | bytes] | None:
        if sender != 2 or frame.round != 1:
            return None
        if frame.kind is Kind.BROADCAST:
            items = cbor2.loads(frame.body)
            items[0] = k_enc
            return [replace(frame, body=cbor2.dumps(items))]
        st = enc.Statement(evil.public, k_enc, keys_2of3[recipient].aux[recipient].pedersen)
        tr = proof_transcript(sid, presign.PROTOCOL, 1, 2, recipient, "enc")
        proof = enc.prove(tr, st, enc.Witness(big_k, rho, evil), SYSTEM_RNG)
        return [replace(frame, body=wire.encode(proof))]

    assert_named(run_presign(keys_2of3, SIGNERS, sid, rules=[rule]), 2, [1, 3], "invalid Πenc for Enc(k)")


@pytest.mark.parametrize("value", ["zero", "n2", "non-unit"])
def test_ciphertext_outside_z_star_n2(keys_2of3: dict[int, KeyShare], value: str) -> None:
    p2 = keys_2of3[2].paillier
    bad = {"zero": 0, "n2": p2.n * p2.n, "non-unit": p2.p * 12345}[value]

    def swap(items: list[Any]) -> None:
        items[0] = bad

    rule = modify(2, 1, edit(swap), kind=Kind.BROADCAST)
    res = run_presign(keys_2of3, SIGNERS, b"ps-ct-" + value.encode(), rules=[rule])
    assert_named(res, 2, [1, 3], "ciphertext outside Z*_{N^2}")


def test_mta_ciphertext_outside_z_star_n2(keys_2of3: dict[int, KeyShare]) -> None:
    def zero_d(items: list[Any]) -> None:
        items[0] = 0

    res = run_presign(keys_2of3, SIGNERS, b"ps-ct-d", rules=[modify(2, 2, edit(zero_d), to=1, kind=Kind.DIRECT)])
    assert_named(res, 2, [1], "ciphertext outside Z*_{N^2}")


@pytest.mark.parametrize(("index", "reason"), [(1, "invalid Πaff-g (MtA)"), (3, "invalid Πaff-g (MtAwc)")])
def test_bad_affg(keys_2of3: dict[int, KeyShare], index: int, reason: str) -> None:
    def bump_z1(proof: list[Any]) -> None:
        proof[7] += 1

    rule = modify(2, 2, edit(edit_proof(index, bump_z1)), to=3, kind=Kind.DIRECT)
    res = run_presign(keys_2of3, SIGNERS, b"ps-affg-%d" % index, rules=[rule])
    assert_named(res, 2, [3], reason)


def test_affg_with_out_of_range_response(keys_2of3: dict[int, KeyShare]) -> None:
    def huge_z2(proof: list[Any]) -> None:
        proof[8] = 1 << 3000

    rule = modify(2, 2, edit(edit_proof(1, huge_z2)), to=1, kind=Kind.DIRECT)
    assert_named(run_presign(keys_2of3, SIGNERS, b"ps-affg-range", rules=[rule]), 2, [1], "invalid Πaff-g (MtA)")


def test_gamma_not_matching_its_encryption(keys_2of3: dict[int, KeyShare]) -> None:
    from enclave.group.secp256k1 import Secp256k1Group

    g = Secp256k1Group()
    other = g.encode(g.base_mul(7))

    def swap_gamma(items: list[Any]) -> None:
        items[0] = other

    res = run_presign(keys_2of3, SIGNERS, b"ps-gamma", rules=[modify(2, 2, edit(swap_gamma), kind=Kind.BROADCAST)])
    assert_named(res, 2, [1, 3], "invalid Πlog* for Γ")


def test_delta_point_not_matching_k(keys_2of3: dict[int, KeyShare]) -> None:
    from enclave.group.secp256k1 import Secp256k1Group

    g = Secp256k1Group()

    def swap_delta(items: list[Any]) -> None:
        items[1] = g.encode(g.base_mul(11))

    rule = modify(2, 3, edit(swap_delta), kind=Kind.BROADCAST)
    res = run_presign(keys_2of3, SIGNERS, b"ps-delta-point", rules=[rule])
    assert_named(res, 2, [1, 3], "invalid Πlog* for Δ")


def test_inconsistent_delta_share_without_reveal(keys_2of3: dict[int, KeyShare]) -> None:
    def bump_delta(items: list[Any]) -> None:
        items[0] = ((int.from_bytes(items[0], "big") + 1) % presign.Secp256k1Group().order).to_bytes(32, "big")

    rule = modify(2, 3, edit(bump_delta), kind=Kind.BROADCAST)
    res = run_presign(keys_2of3, SIGNERS, b"ps-delta-norev", rules=[rule])
    assert_named(res, 2, [1, 3])


def test_inconsistent_delta_share_identified_by_reveal(keys_2of3: dict[int, KeyShare]) -> None:
    # Party 2 broadcasts a wrong δ_2 consistently to everyone (echoes fixed up to match) and
    # then takes part in the reveal honestly: the recomputation of every δ_j names it.
    sid = b"ps-delta-reveal"
    drivers: list[Driver] = [presign.start(sid, keys_2of3[i], SIGNERS, SYSTEM_RNG) for i in SIGNERS]
    evil = drivers[1]
    tampered: dict[str, bytes] = {}

    def rule(sender: int, recipient: int, frame: Frame) -> list[Frame | bytes] | None:
        if sender != 2:
            return None
        if frame.round == 3 and frame.kind is Kind.BROADCAST:
            items = cbor2.loads(frame.body)
            items[0] = ((int.from_bytes(items[0], "big") + 1) % presign.Secp256k1Group().order).to_bytes(32, "big")
            tampered["body"] = cbor2.dumps(items)
            return [replace(frame, body=tampered["body"])]
        if frame.round == 4:
            echo = list(frame.echo)
            echo[SIGNERS.index(2)] = echo_digest(sid, 3, 2, tampered["body"])
            carry = evil._round.c  # type: ignore[union-attr]
            n = carry.nonces
            masks = {j: [y, r] for j, (y, r) in sorted(carry.masks.gamma.items())}
            reveal = cbor2.dumps([1, n.k, n.rho, n.gamma, n.nu, masks])
            return [replace(frame, echo=tuple(echo), body=reveal)]
        return None

    assert_named(run(drivers, rules=[rule]), 2, [1, 3], "inconsistent δ share")


def test_reveal_that_does_not_open(keys_2of3: dict[int, KeyShare]) -> None:
    # Party 1 honestly fails the δ check (party 3 lied about δ_3), but party 3 then reveals a
    # different k_3: the reveal does not open K_3, so party 3 is named.
    sid = b"ps-bad-reveal"
    drivers: list[Driver] = [presign.start(sid, keys_2of3[i], SIGNERS, SYSTEM_RNG) for i in SIGNERS]
    evil = drivers[2]
    tampered: dict[str, bytes] = {}

    def rule(sender: int, recipient: int, frame: Frame) -> list[Frame | bytes] | None:
        if sender != 3:
            return None
        if frame.round == 3 and frame.kind is Kind.BROADCAST:
            items = cbor2.loads(frame.body)
            items[0] = bytes(31) + b"\x05"
            tampered["body"] = cbor2.dumps(items)
            return [replace(frame, body=tampered["body"])]
        if frame.round == 4:
            echo = list(frame.echo)
            echo[SIGNERS.index(3)] = echo_digest(sid, 3, 3, tampered["body"])
            carry = evil._round.c  # type: ignore[union-attr]
            n = carry.nonces
            masks = {j: [y, r] for j, (y, r) in sorted(carry.masks.gamma.items())}
            reveal = cbor2.dumps([1, n.k + 1, n.rho, n.gamma, n.nu, masks])
            return [replace(frame, echo=tuple(echo), body=reveal)]
        return None

    assert_named(run(drivers, rules=[rule]), 3, [1, 2], "reveal does not open the committed values")


def test_round_one_replayed_from_older_session(keys_2of3: dict[int, KeyShare]) -> None:
    old = presign.start(b"ps-old", keys_2of3[2], SIGNERS, SYSTEM_RNG)
    old_frames = {out.to: out.payload for out in old.take_outgoing()}

    def replay(sender: int, recipient: int, frame: Frame) -> list[Frame | bytes] | None:
        if sender == 2 and frame.round == 1:
            return [old_frames[None if frame.kind is Kind.BROADCAST else recipient]]
        return None

    res = run_presign(keys_2of3, SIGNERS, b"ps-new", rules=[replay])
    assert_named(res, 2, [1, 3], "invalid Πenc for Enc(k)")


def test_sender_outside_the_signer_set(keys_2of3: dict[int, KeyShare]) -> None:
    # Party 3 holds a share of the key but is not a signer of this session: its frames are
    # refused by every driver (BadInput), they cannot abort the session, and signing succeeds.
    intruder = presign.start(b"ps-outsider", keys_2of3[3], (1, 3), SYSTEM_RNG)
    payloads = [out.payload for out in intruder.take_outgoing()]
    res = run_presign(keys_2of3, (1, 2), b"ps-outsider", inject=[(3, 1, p) for p in payloads] + [(3, 2, payloads[0])])
    assert (1, 3) in res.rejected and (2, 3) in res.rejected
    presigs = res.outputs()
    digest = digest_of(b"outsider")
    stray = b"\x01\x00\x01\x00\x00\x00" + bytes(32)
    sign_res = run_sign(keys_2of3, presigs, digest, b"sign-outsider", inject=[(3, 1, stray)])  # type: ignore[arg-type]
    assert sign_res.rejected == [(1, 3)]
    check_signature(sign_res.outputs()[1], digest, keys_2of3[1].public_key)  # type: ignore[arg-type]


def _chi_fault(
    sid: bytes,
    drivers: list[Driver],
    signers: tuple[int, ...],
    evil: int,
    identify: Callable[[list[Any]], None] | None,
) -> Callable[[int, int, Frame], list[Frame | bytes] | None]:
    """`evil` broadcasts Ŝ + G instead of its Ŝ = χ·Γ, to everyone alike (echoes fixed up). Its
    own driver saw nothing wrong, so it would answer round 4 with "ok"; with `identify` it
    instead takes part in the identification from its real state, its body passed through
    `identify` (a CBOR-array editor) first."""
    g = Secp256k1Group()
    evil_driver = drivers[signers.index(evil)]
    state: dict[str, bytes] = {}

    def rule(sender: int, recipient: int, frame: Frame) -> list[Frame | bytes] | None:
        if sender != evil:
            return None
        if frame.round == 3 and frame.kind is Kind.BROADCAST:
            items = cbor2.loads(frame.body)
            items[2] = g.encode(g.add(g.decode(items[2]), g.generator()))
            state["r3"] = cbor2.dumps(items)
            return [replace(frame, body=state["r3"])]
        if frame.round == 4:
            echo = list(frame.echo)
            echo[signers.index(evil)] = echo_digest(sid, 3, evil, state["r3"])
            body = frame.body
            if identify is not None:
                if "r4" not in state:
                    rnd = evil_driver._round
                    assert isinstance(rnd, presign.Round4)
                    state["r4"] = edit(identify)(presign.identification(rnd.cfg, rnd.c, rnd.pub)[0])
                body = state["r4"]
            return [replace(frame, echo=tuple(echo), body=body)]
        return None

    return rule


def _run_chi_fault(
    keys: dict[int, KeyShare],
    signers: tuple[int, ...],
    sid: bytes,
    identify: Callable[[list[Any]], None] | None,
    evil: int = 2,
) -> Result:
    drivers: list[Driver] = [presign.start(sid, keys[i], signers, SYSTEM_RNG) for i in signers]
    return run(drivers, rules=[_chi_fault(sid, drivers, signers, evil, identify)])


def _as_is(items: list[Any]) -> None:
    pass


CHI_SHAPES = {
    # name: (key fixture, signers, the party that lies)
    "2of2": ("keys_2of2", (1, 2), 2),
    "2of3": ("keys_2of3", (1, 2, 3), 2),
    "2of3-pair": ("keys_2of3", (1, 3), 3),
    "3of5": ("keys_3of5", (1, 3, 5), 3),
}


@pytest.mark.parametrize("shape", list(CHI_SHAPES))
def test_wrong_chi_point_named_by_identification(request: pytest.FixtureRequest, shape: str) -> None:
    # The liar follows the identification honestly: every proof it gives verifies, and its own
    # equation is the one that fails, at every honest party.
    fixture, signers, evil = CHI_SHAPES[shape]
    keys = request.getfixturevalue(fixture)
    res = _run_chi_fault(keys, signers, b"ps-chi-ident-" + shape.encode(), _as_is, evil)
    assert_named(res, evil, [p for p in signers if p != evil], "inconsistent χ share")


@pytest.mark.parametrize("shape", ["2of2", "2of3"])
def test_wrong_chi_point_without_identification(request: pytest.FixtureRequest, shape: str) -> None:
    fixture, signers, evil = CHI_SHAPES[shape]
    keys = request.getfixturevalue(fixture)
    res = _run_chi_fault(keys, signers, b"ps-chi-silent-" + shape.encode(), None, evil)
    assert_named(res, evil, [p for p in signers if p != evil], "missing identification after a failed χ check")


def _shift(index: int, party: int, sign: int) -> Callable[[list[Any]], None]:
    g = Secp256k1Group()

    def apply(items: list[Any]) -> None:
        p = g.decode(items[index][party])
        items[index][party] = g.encode(g.add(p, g.generator()) if sign > 0 else g.sub(p, g.generator()))

    return apply


def test_chi_cheater_balancing_with_its_t_value_is_caught_by_the_product_proof(
    keys_2of3: dict[int, KeyShare],
) -> None:
    # T_{2,2} + G would balance party 2's own equation and no one would be named: the DLEQ proof refuses it.
    res = _run_chi_fault(keys_2of3, SIGNERS, b"ps-chi-t", _shift(1, 2, +1))
    assert_named(res, 2, [1, 3], "invalid DLEQ proof for w·Δ")


def test_chi_cheater_shifting_the_blame_into_a_mask_point_is_caught_by_dec(keys_2of3: dict[int, KeyShare]) -> None:
    # Y_{2,1} - G balances party 2's equation and breaks party 1's, framing it: Πdec refuses it.
    res = _run_chi_fault(keys_2of3, SIGNERS, b"ps-chi-y", _shift(3, 1, -1))
    assert_named(res, 2, [1, 3], "invalid Πdec for the MtAwc mask")


def test_identification_proof_made_for_another_verifier(keys_2of3: dict[int, KeyShare]) -> None:
    # The liar hands party 3 the Πdec proofs it made for party 1: a proof is made for one
    # verifier (its ring-Pedersen parameters, and the transcript), so party 3 refuses them;
    # party 1 gets valid proofs and names the lie itself.
    def copy_proofs(items: list[Any]) -> None:
        items[4][3] = items[4][1]

    res = _run_chi_fault(keys_2of3, SIGNERS, b"ps-chi-verifier", copy_proofs)
    assert_named(res, 2, [3], "invalid Πdec for the MtAwc mask")
    assert_named(res, 2, [1], "inconsistent χ share")


def test_identification_with_a_malformed_body(keys_2of3: dict[int, KeyShare]) -> None:
    def drop_entry(items: list[Any]) -> None:
        del items[3][1]

    res = _run_chi_fault(keys_2of3, SIGNERS, b"ps-chi-shape", drop_entry)
    assert_named(res, 2, [1, 3], "malformed identification")


def test_honest_presign_sends_no_identification(keys_2of3: dict[int, KeyShare]) -> None:
    # The honest path: round 4 is the one-item "ok" from everyone, and the output signs.
    sid = b"ps-honest-r4"
    seen: list[bytes] = []

    def spy(sender: int, recipient: int, frame: Frame) -> list[Frame | bytes] | None:
        if frame.round == 4:
            seen.append(frame.body)
        return None

    res = run_presign(keys_2of3, SIGNERS, sid, rules=[spy])
    assert seen and all(b == cbor2.dumps([0]) for b in seen)
    presigs = res.outputs()
    digest = digest_of(b"honest after identification change")
    out = run_sign(keys_2of3, presigs, digest, b"sign-honest-r4")  # type: ignore[arg-type]
    check_signature(out.outputs()[1], digest, keys_2of3[1].public_key)  # type: ignore[arg-type]
