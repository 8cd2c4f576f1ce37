"""FROST share repair: ZF frost's repairable threshold scheme (Laing and Stinson, eprint 2017/1155).

A participant `r` that lost its signing share gets the same share s_r = f(r) back, under its
same identifier, from a set H of helpers (other participants of the key, at least min_signers
of them) without any of them learning it:

    step 1, helper i: zeta_i = Lagrange coefficient of i over H evaluated at x = r; split
        zeta_i * s_i into |H| random-looking deltas delta_{i->j}, one per helper j (i itself
        included), that sum to it. Each delta_{i->j} goes to helper j privately.
    step 2, helper j: sigma_j = sum over i of delta_{i->j}. It goes to r privately.
    step 3, r: s_r = sum over j of sigma_j, because sum_i zeta_i * s_i = f(r) when |H| >= t.

Wire compatibility with ZF frost (`keys::repairable`): deltas and sigmas are bare scalars in the
suite's canonical encoding, and helper i gives the remainder to the last helper in identifier
order, as ZF does. (frost_rs wraps each scalar in serde JSON; that is its binding's transport,
not the scheme, see tests/enclave/frost/zf.py.)

What ZF leaves out and this module adds, so that a cheating helper is named instead of giving
r a wrong share:
- `check_share` makes r's result unusable unless s_r * G equals r's verifying share in the
  key's public key package (which r takes from the helpers and checks they all sent the same).
- Commitments D_{i->j} = delta_{i->j} * G (`delta_commitments`), broadcast by each helper of
  this project, let everyone check that a helper's deltas sum to its Lagrange-weighted share
  (`check_contribution`: sum_j D_{i->j} == zeta_i * Y_i), let helper j check each delta it
  receives (`check_delta`), and let r check each sigma (`check_sigma`). They reveal nothing
  about s_r beyond Y_r, which is public. A ZF frost helper sends none; then only `check_share`
  protects r, and it cannot say which helper cheated.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence

from enclave.crypto import polynomial
from enclave.crypto.rng import Rng
from enclave.errors import InvalidEncoding, InvalidParameters, ProtocolFault
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage


def check_helpers(helpers: Sequence[int], participant: int, min_signers: int) -> list[int]:
    """The helper set in identifier order, after the checks every party makes on it."""
    ordered = sorted(helpers)
    if len(set(ordered)) != len(ordered):
        raise InvalidParameters("repair helpers must be distinct")
    if participant in ordered:
        raise InvalidParameters("the participant being repaired cannot be one of its helpers")
    if len(ordered) < max(2, min_signers):
        # Fewer than t points do not determine f(r); ZF itself only insists on two.
        raise InvalidParameters(f"a repair needs at least {max(2, min_signers)} helpers (the key's threshold)")
    return ordered


def zeta(cs: Ciphersuite, helper: int, helpers: Iterable[int], participant: int) -> int:
    """Lagrange coefficient of `helper` over `helpers`, evaluated at the participant's identifier."""
    return polynomial.lagrange_coefficient(cs.order, helper, helpers, at=participant)


def step1(cs: Ciphersuite, helpers: Sequence[int], key: KeyPackage, participant: int, rng: Rng) -> dict[int, int]:
    """Helper `key.identifier`'s deltas, {helper j: delta_{i->j}}, summing to zeta_i * s_i."""
    ordered = check_helpers(helpers, participant, key.min_signers)
    if key.identifier not in ordered:
        raise InvalidParameters("this helper is not in the helper set")
    order = cs.order
    target = zeta(cs, key.identifier, ordered, participant) * key.signing_share % order
    deltas = {j: cs.group.random_scalar(rng) for j in ordered[:-1]}
    deltas[ordered[-1]] = (target - sum(deltas.values())) % order
    return deltas


def step2(cs: Ciphersuite, deltas: Iterable[int]) -> int:
    """Helper j's sigma: the sum of the deltas every helper (j included) gave it."""
    return sum(deltas) % cs.order


def step3(cs: Ciphersuite, sigmas: Iterable[int]) -> int:
    """The participant's signing share: the sum of the helpers' sigmas."""
    return sum(sigmas) % cs.order


def check_share(cs: Ciphersuite, participant: int, share: int, public: PublicKeyPackage) -> KeyPackage:
    """The repaired share as a key package, if it is the participant's share of `public`'s key."""
    expected = public.verifying_shares.get(participant)
    if expected is None:
        raise InvalidParameters("the participant is not in the key's public key package")
    if public.min_signers is None:
        raise InvalidParameters("the public key package does not record the threshold")
    g = cs.group
    verifying_share = g.encode(g.base_mul(share)) if share else b""
    if not share or verifying_share != expected:
        raise ProtocolFault(set(), "the repaired share does not match the participant's verifying share")
    return KeyPackage(participant, share, verifying_share, public.verifying_key, public.min_signers)


# -- attribution: what this project's helpers add to ZF's scheme ----------------------------------


def delta_commitments(cs: Ciphersuite, deltas: Mapping[int, int]) -> dict[int, bytes]:
    """{helper j: delta_{i->j} * G}, broadcast by helper i beside its private deltas."""
    g = cs.group
    return {j: g.encode(g.base_mul(d)) for j, d in sorted(deltas.items())}


def check_contribution(
    cs: Ciphersuite,
    helper: int,
    helpers: Sequence[int],
    participant: int,
    commitments: Mapping[int, bytes],
    public: PublicKeyPackage,
) -> None:
    """Helper `helper`'s commitments cover every helper and sum to zeta_i * Y_i, else it is named."""
    if sorted(commitments) != sorted(helpers):
        raise ProtocolFault({helper}, "repair delta commitments do not name exactly the helpers")
    g = cs.group
    try:
        points = [g.decode(commitments[j]) for j in sorted(commitments)]
    except InvalidEncoding:
        raise ProtocolFault({helper}, "repair delta commitment is not a valid element") from None
    y_i = public.verifying_shares.get(helper)
    if y_i is None:
        raise ProtocolFault({helper}, "repair helper is not a participant of the key")
    expected = g.decode_mul(y_i, zeta(cs, helper, helpers, participant))
    if not g.eq(g.sum(points), expected):
        raise ProtocolFault({helper}, "repair deltas do not sum to the helper's Lagrange-weighted share")


def check_delta(cs: Ciphersuite, sender: int, delta: int, commitment: bytes) -> None:
    """A delta received from `sender` must match the commitment it broadcast for us (which
    passed `check_contribution`)."""
    g = cs.group
    # Compared as elements: a zero delta has no encoding (secp256k1) and matches no commitment,
    # since check_contribution's strict decode refused the identity.
    if not 0 <= delta < cs.order or not g.eq(g.base_mul(delta), cs.point(commitment)):
        raise ProtocolFault({sender}, "repair delta does not match its commitment")


def check_sigma(cs: Ciphersuite, sender: int, sigma: int, commitments: Mapping[int, Mapping[int, bytes]]) -> None:
    """Helper `sender`'s sigma must be the sum of the deltas committed for it: {i: {j: D_ij}}.

    The commitments must have passed `check_contribution` (which decodes them strictly)."""
    g = cs.group
    column = g.sum([cs.point(by_helper[sender]) for by_helper in commitments.values()])
    if not 0 <= sigma < cs.order or not g.eq(g.base_mul(sigma), column):
        raise ProtocolFault({sender}, "repair sigma does not match the deltas committed for it")


# -- the repaired party's trust in the key's public key package ------------------------------------


def check_package(
    cs: Ciphersuite, public: PublicKeyPackage, shown_key: bytes, min_signers: int, identifiers: Sequence[int]
) -> None:
    """InvalidParameters unless `public` is a package of the key shown as `shown_key` (x-only for
    Taproot) with exactly `identifiers` and threshold `min_signers`, whose verifying shares all
    lie on one polynomial of degree min_signers - 1 in the exponent with the verifying key at 0.

    That last check is what lets a party holding nothing trust a package: a host that makes one
    up for the key knows at most min_signers - 1 of its shares' discrete logs (knowing
    min_signers would give it the key's secret), so it cannot prove round one for every helper
    under the made-up shares."""
    g = cs.group
    if sorted(public.verifying_shares) != sorted(identifiers) or public.min_signers != min_signers:
        raise InvalidParameters("the public key package does not list the key's parties and threshold")
    shown = public.verifying_key[1:] if cs.bip340 else public.verifying_key
    if not hmac.compare_digest(shown, shown_key):
        raise InvalidParameters("the public key package is not of the expected key")
    ids = sorted(identifiers)
    base, order = ids[:min_signers], cs.order
    shares = {i: cs.point(public.verifying_shares[i]) for i in base}
    targets = [(0, cs.point(public.verifying_key))]
    targets += [(x, cs.point(public.verifying_shares[x])) for x in ids[min_signers:]]
    for x, want in targets:
        got = g.sum([g.mul(shares[i], polynomial.lagrange_coefficient(order, i, base, at=x)) for i in base])
        if not g.eq(got, want):
            raise InvalidParameters("the public key package's verifying shares do not interpolate to its key")
