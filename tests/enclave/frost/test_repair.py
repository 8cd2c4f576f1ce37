"""FROST share repair (enclave.protocols.frost.repair): the scheme itself for every suite, the
attribution checks this project adds, and live interop with ZF frost's `repairable` module
through frost_rs (`recover_step_1/2/3`) with frost_rs as a helper and as the repaired party.

Every repaired share is checked against the share it replaces, and a signature made with it is
checked by an independent verifier (libsodium, libsecp256k1, or ZF frost for the RFC secp256k1
suite).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest

from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters, ProtocolFault
from enclave.protocols.frost import keys, repair, wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from tests import harness
from tests.enclave.frost.common import dealer, run_dkg, sign_drivers, verify_independently
from tests.enclave.frost.zf import b64, call, module, unb64

ZF_SUITES = [FROST_ED25519, FROST_SECP256K1]


def _repair(
    cs: Ciphersuite, kps: Mapping[int, KeyPackage], public: PublicKeyPackage, helpers: Sequence[int], r: int
) -> KeyPackage:
    """One honest repair among this project's helpers, with every attribution check."""
    deltas = {i: repair.step1(cs, helpers, kps[i], r, SYSTEM_RNG) for i in helpers}
    commitments = {i: repair.delta_commitments(cs, deltas[i]) for i in helpers}
    for i in helpers:
        repair.check_contribution(cs, i, helpers, r, commitments[i], public)
    sigmas = {}
    for j in helpers:
        for i in helpers:
            repair.check_delta(cs, i, deltas[i][j], commitments[i][j])
        sigmas[j] = repair.step2(cs, [deltas[i][j] for i in helpers])
        repair.check_sigma(cs, j, sigmas[j], commitments)
    return repair.check_share(cs, r, repair.step3(cs, sigmas.values()), public)


def _signs(cs: Ciphersuite, kps: Mapping[int, KeyPackage], public: PublicKeyPackage, signers: list[int]) -> None:
    message = b"signed after a repair"
    res = harness.run(sign_drivers(cs, dict(kps), public, signers, message))
    signatures = {bytes(sig) for sig in res.outputs().values()}
    assert len(signatures) == 1
    signature = signatures.pop()
    verify_independently(cs, public.verifying_key, message, signature)


@pytest.mark.parametrize(
    ("t", "n", "helpers", "r"),
    [(2, 3, [1, 3], 2), (2, 3, [2, 3], 1), (3, 5, [1, 2, 5], 4), (3, 5, [1, 2, 3, 5], 4), (2, 2, None, None)],
)
def test_repair_rebuilds_the_same_share(suite: Ciphersuite, t: int, n: int, helpers: list[int] | None, r: int) -> None:
    if helpers is None:  # 2-of-2 cannot be repaired: one helper is fewer than the threshold
        kps, _public = dealer(suite, 2, 2)
        with pytest.raises(InvalidParameters, match="at least 2 helpers"):
            repair.step1(suite, [1], kps[1], 2, SYSTEM_RNG)
        return
    kps, public = run_dkg(suite, n, t) if t == 2 else dealer(suite, n, t)
    rebuilt = _repair(suite, kps, public, helpers, r)
    assert rebuilt == kps[r]
    # and it signs with a helper, under the unchanged key
    _signs(suite, {**kps, r: rebuilt}, public, sorted([r, *helpers[: t - 1]]))


def test_helper_set_rules(suite: Ciphersuite) -> None:
    kps, _public = dealer(suite, 5, 3)
    with pytest.raises(InvalidParameters, match="at least 3 helpers"):
        repair.step1(suite, [1, 2], kps[1], 4, SYSTEM_RNG)  # two points cannot give f(4) for t = 3
    with pytest.raises(InvalidParameters, match="cannot be one of its helpers"):
        repair.step1(suite, [1, 2, 4], kps[1], 4, SYSTEM_RNG)
    with pytest.raises(InvalidParameters, match="distinct"):
        repair.step1(suite, [1, 2, 2, 3], kps[1], 4, SYSTEM_RNG)
    with pytest.raises(InvalidParameters, match="not in the helper set"):
        repair.step1(suite, [2, 3, 4], kps[1], 5, SYSTEM_RNG)


def test_deltas_reveal_nothing_alone(suite: Ciphersuite) -> None:
    """Two repairs of the same share give helper j different deltas from helper i (fresh
    randomness), while their sum is the same Lagrange-weighted share."""
    kps, _public = dealer(suite, 3, 2)
    a = repair.step1(suite, [1, 3], kps[1], 2, SYSTEM_RNG)
    b = repair.step1(suite, [1, 3], kps[1], 2, SYSTEM_RNG)
    assert a[3] != b[3] and a[1] != b[1]
    assert sum(a.values()) % suite.order == sum(b.values()) % suite.order


def test_a_wrong_sigma_gives_no_share(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 3, 2)
    deltas = {i: repair.step1(suite, [1, 3], kps[i], 2, SYSTEM_RNG) for i in (1, 3)}
    sigmas = [repair.step2(suite, [deltas[i][j] for i in (1, 3)]) for j in (1, 3)]
    sigmas[1] = (sigmas[1] + 1) % suite.order
    with pytest.raises(ProtocolFault, match="does not match the participant's verifying share"):
        repair.check_share(suite, 2, repair.step3(suite, sigmas), public)


def _culprits(exc: pytest.ExceptionInfo[ProtocolFault]) -> set[int]:
    return set(exc.value.culprits)


def test_a_cheating_helper_is_named(suite: Ciphersuite) -> None:
    kps, public = dealer(suite, 5, 3)
    helpers, r, order = [1, 3, 5], 2, suite.order
    deltas = {i: repair.step1(suite, helpers, kps[i], r, SYSTEM_RNG) for i in helpers}
    commitments = {i: repair.delta_commitments(suite, deltas[i]) for i in helpers}

    # helper 3 sends helper 5 a delta other than the one it committed to
    with pytest.raises(ProtocolFault, match="does not match its commitment") as e1:
        repair.check_delta(suite, 3, (deltas[3][5] + 1) % order, commitments[3][5])
    assert _culprits(e1) == {3}

    # a zero delta matches no commitment (and has no secp256k1 encoding): a fault, not a crash
    with pytest.raises(ProtocolFault, match="does not match its commitment") as e0:
        repair.check_delta(suite, 3, 0, commitments[3][5])
    assert _culprits(e0) == {3}

    # helper 5 splits something other than its Lagrange-weighted share, consistently committed
    skewed = dict(deltas[5])
    skewed[1] = (skewed[1] + 7) % order
    with pytest.raises(ProtocolFault, match="Lagrange-weighted share") as e2:
        repair.check_contribution(suite, 5, helpers, r, repair.delta_commitments(suite, skewed), public)
    assert _culprits(e2) == {5}

    # helper 1 commits to a set that leaves a helper out, or to a non-element
    partial = {j: c for j, c in commitments[1].items() if j != 5}
    with pytest.raises(ProtocolFault, match="exactly the helpers") as e3:
        repair.check_contribution(suite, 1, helpers, r, partial, public)
    assert _culprits(e3) == {1}
    broken = {**commitments[1], 5: b"\x00" * len(commitments[1][5])}
    with pytest.raises(ProtocolFault, match="not a valid element") as e4:
        repair.check_contribution(suite, 1, helpers, r, broken, public)
    assert _culprits(e4) == {1}

    # helper 3 passes the participant a sigma that is not the sum committed for it
    sigma3 = repair.step2(suite, [deltas[i][3] for i in helpers])
    repair.check_sigma(suite, 3, sigma3, commitments)
    with pytest.raises(ProtocolFault, match="sigma does not match") as e5:
        repair.check_sigma(suite, 3, (sigma3 + 1) % order, commitments)
    assert _culprits(e5) == {3}


# -- live interop with ZF frost (frost_rs) ---------------------------------------------------------


def _zid(cs: Ciphersuite, i: int) -> str:
    return b64(cs.encode_identifier(i))


def to_zf_scalar(cs: Ciphersuite, k: int) -> str:
    """frost_rs's transport of a ZF Scalar: base64url of its serde JSON, which is the canonical
    encoding as a byte array (Ed25519) or as upper-case hex (secp256k1)."""
    raw = cs.group.encode_scalar(k)
    text = json.dumps(list(raw), separators=(",", ":")) if cs is FROST_ED25519 else json.dumps(raw.hex().upper())
    return b64(text.encode())


def from_zf_scalar(cs: Ciphersuite, text: str) -> int:
    value = json.loads(unb64(text))
    raw = bytes(value) if isinstance(value, list) else bytes.fromhex(value)
    return cs.group.decode_scalar(raw)


@pytest.fixture(params=ZF_SUITES, ids=[cs.short_name for cs in ZF_SUITES])
def zf_suite(request: pytest.FixtureRequest) -> Ciphersuite:
    suite: Ciphersuite = request.param
    return suite


def _zf_dealer(cs: Ciphersuite, t: int, n: int) -> tuple[dict[int, keys.SecretShare], dict[int, str], PublicKeyPackage]:
    zshares = call(module(cs).get_key, t, n)
    shares = {}
    for text in zshares.values():
        share = wire.decode_secret_share(cs, unb64(text))
        shares[share.identifier] = share
    public = keys.public_key_package_from_commitment(cs, sorted(shares), shares[1].commitment, t)
    return shares, {i: b64(wire.encode_secret_share(cs, s)) for i, s in shares.items()}, public


@pytest.mark.parametrize(("ours", "theirs"), [([1], [3]), ([3], [1]), ([1, 3], []), ([], [1, 3])])
def test_frost_rs_repairs_with_us_and_for_us(zf_suite: Ciphersuite, ours: list[int], theirs: list[int]) -> None:
    """2-of-3, participant 2 lost its share; helpers 1 and 3 are ours or ZF's in every mix. The
    sigmas go both to our step 3 and to ZF's `recover_step_3`, and both rebuild share 2."""
    cs, zf = zf_suite, module(zf_suite)
    shares, zf_shares, public = _zf_dealer(cs, 2, 3)
    kps = {i: keys.key_package_from_secret_share(cs, s) for i, s in shares.items()}
    helpers, r = sorted(ours + theirs), 2
    zhelpers = [_zid(cs, i) for i in helpers]

    deltas: dict[int, dict[int, int]] = {}  # deltas[i][j]: from helper i to helper j
    for i in ours:
        deltas[i] = repair.step1(cs, helpers, kps[i], r, SYSTEM_RNG)
    for i in theirs:
        out = call(zf.recover_step_1, zhelpers, zf_shares[i], _zid(cs, r))
        deltas[i] = {j: from_zf_scalar(cs, out[_zid(cs, j)]) for j in helpers}
        # ZF's deltas also pass this project's contribution check
        repair.check_contribution(cs, i, helpers, r, repair.delta_commitments(cs, deltas[i]), public)

    sigmas: dict[int, int] = {}
    for j in ours:
        sigmas[j] = repair.step2(cs, [deltas[i][j] for i in helpers])
    for j in theirs:
        sigmas[j] = from_zf_scalar(cs, call(zf.recover_step_2, [to_zf_scalar(cs, deltas[i][j]) for i in helpers]))

    # we are the repaired party
    rebuilt = repair.check_share(cs, r, repair.step3(cs, sigmas.values()), public)
    assert rebuilt == kps[r]
    # ZF is the repaired party: its SecretShare carries the dealer's commitment, and ZF's own
    # KeyPackage conversion Feldman-checks the share against it
    zf_commitment = call(zf.get_gen_with_dealer_coefficient_commitment, zf_shares[1])
    zf_rebuilt = call(zf.recover_step_3, [to_zf_scalar(cs, s) for s in sigmas.values()], _zid(cs, r), zf_commitment)
    assert wire.decode_secret_share(cs, unb64(zf_rebuilt)) == shares[r]
    assert unb64(call(zf.gen_key_package, zf_rebuilt)) == wire.encode_key_package(cs, kps[r])
    _signs(cs, {**kps, r: rebuilt}, public, [1, r])


def test_scalar_transport_round_trips(zf_suite: Ciphersuite) -> None:
    """The adapter above reads what frost_rs writes (a sum of one delta is that delta)."""
    cs = zf_suite
    k = cs.group.random_scalar(SYSTEM_RNG)
    assert from_zf_scalar(cs, call(module(cs).recover_step_2, [to_zf_scalar(cs, k)])) == k
