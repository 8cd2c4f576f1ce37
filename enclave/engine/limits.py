"""The largest message an honest party sends in each round of each protocol, derived from the
protocol's own encodings; what the engine holds a peer's message to before it is examined.

Why: a message for a later round is kept unexamined until its round comes, so its size is all
the enclave can check on arrival. Each bound below is the encoded size of the largest values an
honest prover or sender can produce, field by field, so an honest message always fits and
anything larger is the sender's fault (the session aborts naming it).

Inputs: the number of parties n, the threshold t, and M, the largest Paillier modulus (N or the
ring-Pedersen N̂) of any party, in bits (`EngineConfig.max_modulus_bits`; key generation refuses
a peer modulus above it, enclave/engine/gg20.py). Every integer is bounded by its origin in the
prover (enclave/zk): a residue mod N is at most M bits, a ciphertext mod N² 2M, and a masked
response such as z = α + e·x with α in ±N̂·2^(ℓ+ε) and e in ±q is at most M + ℓ + ε + 1 bits
(ℓ = 256, ℓ' = 1280, ε = 512, enclave/crypto/params.py). Each value is then counted at its CBOR
length (cbor2: a big integer is a tag, a byte-string head and its magnitude bytes).

Frames (enclave/protocols/driver.py) add a 6-byte header and 32 bytes of echo per broadcaster
of the driver's previous round (none in a driver's first round).

A bound can exceed `MESSAGE_CEILING`, the largest payload the host relays (1 MiB,
signer/sessions/convert.py): only GG20's round-4 identification after a failed χ check, which
carries (n−1)² Πdec proofs, from about 24 signers up (2048-bit moduli). Such a round is
`capped`: a message over the ceiling there is no proof of malice, so the session fails naming
nobody (the identification cannot travel at that size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from enclave.crypto.params import EPSILON, L_PRIME, REPETITIONS, L
from enclave.protocols.reshare_auth import SIGNATURE_LEN as P256_SIGNATURE
from mpc.v1 import enclave_pb2 as pb

MESSAGE_CEILING = 1 << 20
FRAME_HEADER = 6
ECHO = 32
MAX_PARTY_INDEX = 1 << 16  # party indices in the drivers (DKG positions): far below this

# secp256k1 / Ed25519 encodings
POINT = 33
SCALAR = 32
ED_POINT = 32
AEAD_TAG = 16
FROST_HEADER = 5

# bit sizes of the masked responses (see the module docstring): |α| <= 2^b plus |e·x| far below
RESPONSE = L + EPSILON + 1  # α in ±2^(ℓ+ε), x < q
RESPONSE_PRIME = L_PRIME + EPSILON + 1  # α in ±2^(ℓ'+ε), x in ±2^ℓ'


def _head(length: int) -> int:
    """CBOR head (major type and length) for a count or byte length."""
    if length < 24:
        return 1
    if length < 1 << 8:
        return 2
    if length < 1 << 16:
        return 3
    if length < 1 << 32:
        return 5
    return 9


def _varint_len(n: int) -> int:
    """LEB128 length (ZF frost's postcard varints)."""
    return max(1, (n.bit_length() + 6) // 7)


def cbor_int(bits: int) -> int:
    """Largest CBOR encoding of an integer of magnitude below 2^bits (either sign)."""
    if bits <= 64:
        return 9
    size = (bits + 7) // 8
    return 1 + _head(size) + size  # tag 2/3, then the magnitude as a byte string


def cbor_bytes(length: int) -> int:
    return _head(length) + length


def cbor_array(items: Sequence[int]) -> int:
    return _head(len(items)) + sum(items)


def cbor_int_map(count: int, value: int) -> int:
    """A map of `count` party indices to values of at most `value` bytes."""
    return _head(count) + count * (cbor_int(MAX_PARTY_INDEX.bit_length()) + value)


# -- proofs (enclave/zk), as `wire.encode` writes them: a CBOR array of the fields ----------------


def enc_proof(m: int) -> int:
    # s, c mod N̂; a mod N0²; z1 response; z2 mod N0; z3 = γ + e·μ, γ in ±N̂·2^(ℓ+ε)
    return cbor_array(
        [cbor_int(m), cbor_int(2 * m), cbor_int(m), cbor_int(RESPONSE), cbor_int(m), cbor_int(m + RESPONSE)]
    )


def logstar_proof(m: int) -> int:
    # s, d mod N̂; a mod N0²; Y a point; z1, z2, z3 as in Πenc
    return cbor_array(
        [
            cbor_int(m),
            cbor_int(2 * m),
            cbor_bytes(POINT),
            cbor_int(m),
            cbor_int(RESPONSE),
            cbor_int(m),
            cbor_int(m + RESPONSE),
        ]
    )


def affg_proof(m: int) -> int:
    # A mod N0², Bx a point, By mod N1², E S F T mod N̂; z1 (x < q), z2 = β + e·y with β in
    # ±2^(ℓ'+ε); z3, z4 masked by N̂·2^(ℓ+ε); w mod N0, wy mod N1
    return cbor_array(
        [cbor_int(2 * m), cbor_bytes(POINT), cbor_int(2 * m)]
        + [cbor_int(m)] * 4
        + [
            cbor_int(RESPONSE),
            cbor_int(RESPONSE_PRIME),
            cbor_int(m + RESPONSE),
            cbor_int(m + RESPONSE),
            cbor_int(m),
            cbor_int(m),
        ]
    )


def dec_proof(m: int) -> int:
    # range ℓ' (presign identification): s, d mod N̂; a mod N0²; B a point; z1 = α + e·y with α in
    # ±2^(ℓ'+ε); z2 mod N0; z3 = γ + e·μ with γ in ±N̂·2^(ℓ'+ε)
    return cbor_array(
        [
            cbor_int(m),
            cbor_int(2 * m),
            cbor_bytes(POINT),
            cbor_int(m),
            cbor_int(RESPONSE_PRIME),
            cbor_int(m),
            cbor_int(m + RESPONSE_PRIME),
        ]
    )


def fac_proof(m: int) -> int:
    # P Q A B T mod N̂; σ in ±N0·N̂·2^ℓ; z1, z2 = α + e·p with α in ±√N0·2^(ℓ+ε); w1, w2 masked by
    # N̂·2^(ℓ+ε); v = r + e·σ̂ with r in ±N0·N̂·2^(ℓ+ε)
    root = m // 2 + 1
    return cbor_array(
        [cbor_int(m)] * 5
        + [cbor_int(2 * m + L + 1)]
        + [cbor_int(root + RESPONSE + 1)] * 2
        + [cbor_int(m + RESPONSE)] * 2
        + [cbor_int(2 * m + RESPONSE + 1)]
    )


def mod_proof(m: int) -> int:
    # w mod N; x, z: m residues mod N each; a, b: m bits each
    residues = cbor_array([cbor_int(m)] * REPETITIONS)
    bits = cbor_array([1] * REPETITIONS)
    return cbor_array([cbor_int(m), residues, bits, bits, residues])


def prm_proof(m: int) -> int:
    # a: commitments mod N̂; z: exponents mod φ(N̂) < N̂
    residues = cbor_array([cbor_int(m)] * REPETITIONS)
    return cbor_array([residues, residues])


def dleq_proof() -> int:
    return cbor_array([cbor_bytes(POINT), cbor_bytes(POINT), cbor_int(8 * SCALAR)])


SCHNORR_PROOF = POINT + SCALAR  # raw A || z (enclave/zk/schnorr.py)


# -- rounds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundBound:
    """Largest honest body of a round's broadcast and of its direct message (0: none sent), and
    the largest broadcast on a way to an output where that is smaller (GG20's round 4 is a
    two-byte "ok" unless a check failed and the session can only abort)."""

    broadcast: int
    direct: int
    broadcast_to_output: int | None = None

    @property
    def to_output(self) -> int:
        b = self.broadcast if self.broadcast_to_output is None else self.broadcast_to_output
        return b + self.direct


def _framed(bodies: Sequence[RoundBound], n: int) -> list[RoundBound]:
    """Add the frame: header and, after a driver's first round, one echo per broadcaster."""
    out = []
    for i, b in enumerate(bodies):
        extra = FRAME_HEADER + (ECHO * n if i > 0 else 0)
        out.append(
            RoundBound(
                b.broadcast + extra if b.broadcast else 0,
                b.direct + extra if b.direct else 0,
                None if b.broadcast_to_output is None else b.broadcast_to_output + extra,
            )
        )
    return out


def frost_dkg(n: int, t: int, element: int = ED_POINT, signature: int = ED_POINT + SCALAR) -> list[RoundBound]:
    # round 1: ZF round-1 package (header, varint t, t elements, varint length of the proof
    # signature, the signature) and this party's ephemeral share-encryption key (one element);
    # round 2: the ZF round-2 package under an AEAD. `element` and `signature` are the suite's
    # encoded sizes (Ed25519 32 and 64; secp256k1 33 and 65; Taproot 33 and 64).
    package = FROST_HEADER + _varint_len(t) + element * t + _varint_len(signature) + signature
    return _framed([RoundBound(package + element, 0), RoundBound(0, FROST_HEADER + SCALAR + AEAD_TAG)], n)


def reshare_auth(element: int) -> int:
    """Round one's authentication (enclave/protocols/reshare_auth.py): two 4-byte length prefixes
    and a dealer's Schnorr proof (element || scalar) or a listed party's P-256 r || s."""
    return 8 + max(element + SCALAR, P256_SIGNATURE)


def frost_reshare(n: int, t: int, element: int = ED_POINT) -> list[RoundBound]:
    # round 1: this party's ephemeral share-encryption key, the 32-byte view digest and, from a
    # dealer, its commitment (t elements of the new threshold), with its authentication; round
    # 2: the ZF round-2 package under an AEAD from a dealer to a receiver, an empty body otherwise.
    r1 = element + 32 + element * t + reshare_auth(element)
    return _framed([RoundBound(r1, 0), RoundBound(0, FROST_HEADER + SCALAR + AEAD_TAG)], n)


def frost_repair(n: int, n_key: int, t: int, element: int = ED_POINT) -> list[RoundBound]:
    # n session parties (n - 1 helpers and the repaired party) of a key of n_key parties.
    # round 1, authenticated (lp32(payload) || lp32(a Schnorr proof, or an r || s signature)):
    # the ephemeral key, the 32-byte view digest and, from a helper, one delta commitment per
    # helper and the key's ZF public key package (header, n_key identifier/share pairs, the key,
    # min_signers); rounds 2 and 3: a bare scalar under an AEAD, or an empty body.
    package = FROST_HEADER + _varint_len(n_key) + n_key * (SCALAR + element) + element + 1 + _varint_len(t)
    payload = element + 32 + element * (n - 1) + package
    sealed = 8 + payload + max(element + SCALAR, 64)
    direct = SCALAR + AEAD_TAG
    # Round 3's frames echo round 2's broadcasters, and round 2 has none.
    two = _framed([RoundBound(sealed, 0), RoundBound(0, direct)], n)
    return [*two, RoundBound(0, FRAME_HEADER + direct)]


def frost_sign(n: int, element: int = ED_POINT) -> list[RoundBound]:
    # round 1: SigningCommitments (header, hiding, binding); round 2: the signature share
    return _framed([RoundBound(FROST_HEADER + 2 * element, 0), RoundBound(SCALAR, 0)], n)


def frost_presign_rounds(n: int, element: int, count: int) -> list[RoundBound]:
    # one round: `count` SigningCommitments back to back
    return _framed([RoundBound(count * (FROST_HEADER + 2 * element), 0)], n)


def frost_one_round() -> list[RoundBound]:
    # one round: the signature share, in a frame whose echo is the session context digest
    return [RoundBound(FRAME_HEADER + ECHO + SCALAR, 0)]


def frost_preprocessed(n: int, element: int, presign_count: int | None) -> MessageLimits:
    """A FROST presigning session of `presign_count` nonces (None: a one-round signature)."""
    rounds = frost_one_round() if presign_count is None else frost_presign_rounds(n, element, presign_count)
    return MessageLimits(tuple(rounds))


def gg20_keygen(n: int, t: int, m: int, refresh: bool = False) -> list[RoundBound]:
    fields = [cbor_bytes(32), cbor_int(m), cbor_int(m), cbor_int(m), cbor_bytes(mod_proof(m)), cbor_bytes(prm_proof(m))]
    r1 = cbor_array([*fields, cbor_bytes(32)] if refresh else fields)  # a refresh adds its source digest
    r2_b = cbor_array([cbor_array([cbor_bytes(POINT)] * t), cbor_bytes(32), cbor_bytes(32), cbor_bytes(SCHNORR_PROOF)])
    r2_d = cbor_array([cbor_int(2 * m), cbor_bytes(fac_proof(m))])
    return _framed([RoundBound(r1, 0), RoundBound(r2_b, r2_d), RoundBound(SCHNORR_PROOF, 0)], n)


def gg20_reshare(n: int, t: int, m: int) -> list[RoundBound]:
    # round 1: [view, V, aux] with aux a CBOR-encoded [N, s, t, Πmod, Πprm] inside a byte string,
    # with its authentication;
    # round 2: a dealer's [C (t points), salt]; direct [Enc(sub-share) or 0, Πfac or b""];
    # round 3: a receiver's Schnorr proof (others send empty bodies)
    aux = cbor_array([cbor_int(m), cbor_int(m), cbor_int(m), cbor_bytes(mod_proof(m)), cbor_bytes(prm_proof(m))])
    r1 = cbor_array([cbor_bytes(32), cbor_bytes(32), cbor_bytes(aux)]) + reshare_auth(POINT)
    r2_b = cbor_array([cbor_array([cbor_bytes(POINT)] * t), cbor_bytes(32)])
    r2_d = cbor_array([cbor_int(2 * m), cbor_bytes(fac_proof(m))])
    return _framed([RoundBound(r1, 0), RoundBound(r2_b, r2_d), RoundBound(SCHNORR_PROOF, 0)], n)


def gg20_presign(n: int, m: int) -> list[RoundBound]:
    c = cbor_int(2 * m)  # a Paillier ciphertext
    r1 = RoundBound(cbor_array([c, c]), enc_proof(m))
    r2 = RoundBound(
        cbor_array([cbor_bytes(POINT), cbor_int_map(n - 1, c), cbor_int_map(n - 1, c)]),
        cbor_array([c, cbor_bytes(affg_proof(m)), c, cbor_bytes(affg_proof(m)), cbor_bytes(logstar_proof(m))]),
    )
    r3 = RoundBound(cbor_array([cbor_bytes(SCALAR), cbor_bytes(POINT), cbor_bytes(POINT)]), logstar_proof(m))
    # round 4: "ok" [0]; or the reveal [1, k, ρ, γ, ν, {j: [y, r]}] after a failed δ check; or the
    # identification [2, {j: T}, {j: Πdlog-eq}, {j: Y}, {v: {j: Πdec}}] after a failed χ check
    reveal = cbor_array(
        [
            1,
            cbor_int(8 * SCALAR),
            cbor_int(m),
            cbor_int(8 * SCALAR),
            cbor_int(m),
            cbor_int_map(n - 1, cbor_array([cbor_int(L_PRIME + 1), cbor_int(m)])),
        ]
    )
    ident = cbor_array(
        [
            1,
            cbor_int_map(n, cbor_bytes(POINT)),
            cbor_int_map(n, cbor_bytes(dleq_proof())),
            cbor_int_map(n - 1, cbor_bytes(POINT)),
            cbor_int_map(n - 1, cbor_int_map(n - 1, cbor_bytes(dec_proof(m)))),
        ]
    )
    return _framed([r1, r2, r3, RoundBound(max(2, reveal, ident), 0, 2)], n)


def gg20_online(n: int) -> list[RoundBound]:
    return _framed([RoundBound(SCALAR, 0)], n)


@dataclass(frozen=True)
class MessageLimits:
    """Bounds of one session, by session round (EnclaveMessage.round, 1-based) and kind."""

    rounds: tuple[RoundBound, ...]
    ceiling: int = MESSAGE_CEILING

    def derived(self, rnd: int, broadcast: bool) -> int:
        b = self.rounds[rnd - 1]
        return b.broadcast if broadcast else b.direct

    def max_bytes(self, rnd: int, broadcast: bool) -> int:
        return min(self.derived(rnd, broadcast), self.ceiling)

    def capped(self, rnd: int, broadcast: bool) -> bool:
        """An honest message of this round and kind may be larger than the ceiling."""
        return self.derived(rnd, broadcast) > self.ceiling

    def queue_bound(self, peers: int) -> int:
        """Most bytes honest peers make this party hold unexamined on the way to an output.

        Per peer, in the round r this party is in: its direct message of r, held until its
        broadcast of r is stored (enclave/protocols/driver.py), and its messages of r + 1 (it
        runs at most one round ahead). Nothing of a round after that can be waiting."""
        rounds = self.rounds
        worst = 0
        for r, b in enumerate(rounds):
            current = min(b.direct, self.ceiling) if b.broadcast else 0
            after = min(rounds[r + 1].to_output, self.ceiling) if r + 1 < len(rounds) else 0
            worst = max(worst, current + after)
        return peers * worst


_KIND_NAMES: dict[int, str] = {
    pb.SESSION_KIND_DKG: "dkg",
    pb.SESSION_KIND_PRESIGN: "presign",
    pb.SESSION_KIND_REFRESH: "refresh",
    pb.SESSION_KIND_RESHARE: "reshare",
}


def kind_name(kind: int) -> str:
    """`for_session`'s name of a SessionKind value: "dkg", "refresh", "reshare", "presign" or "sign"."""
    return _KIND_NAMES.get(kind, "sign")


def for_session(
    protocol: str,
    kind: str,
    n: int,
    threshold: int,
    modulus_bits: int,
    with_presignature: bool = False,
    element_len: int = ED_POINT,
    signature_len: int = ED_POINT + SCALAR,
) -> MessageLimits:
    """`protocol`: "frost" or "gg20"; `kind`: "dkg", "refresh", "reshare", "presign" or "sign"; n
    parties (signers; a reshare's dealers and receivers together, `threshold` the new one); for
    FROST, the suite's element and signature encoding sizes. A refresh runs its DKG's rounds;
    FROST's fits the DKG's bounds (one commitment element fewer, a 32-byte source digest more),
    GG20's round one carries that digest on top. A reshare has its own bounds."""
    if protocol == "frost" and kind == "reshare":
        rounds = frost_reshare(n, threshold, element_len)
    elif protocol == "frost":
        dkg_like = kind in ("dkg", "refresh")
        rounds = frost_dkg(n, threshold, element_len, signature_len) if dkg_like else frost_sign(n, element_len)
    elif kind == "reshare":
        rounds = gg20_reshare(n, threshold, modulus_bits)
    elif kind in ("dkg", "refresh"):
        rounds = gg20_keygen(n, threshold, modulus_bits, refresh=kind == "refresh")
    elif kind == "presign":
        rounds = gg20_presign(n, modulus_bits)
    else:
        rounds = gg20_online(n) if with_presignature else gg20_presign(n, modulus_bits) + gg20_online(n)
    return MessageLimits(tuple(rounds))
