"""GG20 online signing: one round, re-randomized by what is signed, with a per-share check.

The presignature gives R = k^-1·G with k = Σk_i, and χ_i with Σχ_i = k·x' for the child key
x' = x + τ of the path fixed at presigning (enclave.protocols.gg20.presign). Signing it as is
would let whoever chooses the message pick it after seeing R (CVE-2025-66017, RUSTSEC-2025-0127;
Groth–Shoup, "On the Security of ECDSA with Additive Key Derivation and Presignatures"). So the
nonce is re-randomized by a value every signer derives alone from what is being signed:

    δ = H("mpc-signer/gg20/rerandomize/v1", presign id, key id, signers, R, child key, path,
          hash rule, digest) mod q          (SHA-512 over length-prefixed fields, wide reduction)
    R' = δ·R,  r = x(R') mod q,  m = digest mod q
    s_i = δ^-1·(m·k_i + r·χ_i)

With nonce κ = δ·k^-1 (so R' = κ·G): Σs_i = δ^-1·k·(m + r·x') = κ^-1·(m + r·x'), an ordinary
ECDSA signature under the child key. A received share is checked alone:
    s_j·R' == m·R_j + r·S_j    (s_j·δ·R = (m·k_j + r·χ_j)·R)
with R_j = k_j·R and S_j = χ_j·R from the presignature, so a bad share aborts naming its
sender. The aggregate is verified (libsecp256k1) before it is output; a failure is terminal for
the presignature, which was consumed before our share left. A presignature whose path is not the
request's is refused (BadInput) before anything is consumed.

Single use: `start` calls `consume(presign_id)` before it computes the share into a message;
the hook must durably record the presignature as used (and raise if it already was). Nothing is
sent when it raises.

Output: `Signature` with r, s (low-s normalized), v (recovery id in {0, 1}); `to_bytes()` gives
the 65-byte r || s || v, `to_der()` the DER form.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from coincurve import PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from enclave.errors import BadInput, ProtocolFault
from enclave.group.secp256k1 import Point, Secp256k1Group
from enclave.protocols.driver import Abort, Driver, Expect, Next, Output, Round, Send
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.message import DIGEST_LEN, MessageHash
from enclave.protocols.gg20.presignature import Presignature

PROTOCOL = "gg20/sign"
RERANDOMIZE_TAG = b"mpc-signer/gg20/rerandomize/v1"


@dataclass(frozen=True)
class Signature:
    r: int
    s: int
    v: int
    public_key: bytes  # the (child) key it verifies under, compressed

    def to_bytes(self) -> bytes:
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.v])

    def to_der(self) -> bytes:
        return encode_dss_signature(self.r, self.s)


def rerandomizer(presig: Presignature, rule: MessageHash, digest: bytes, order: int) -> int:
    """δ in [1, q): equal at every signer of `presig` for the same rule and digest. Everything
    hashed is public and fixed before signing; 64 bytes reduced mod q leave no usable bias."""
    h = hashlib.sha512()
    signers = b"".join(struct.pack(">Q", j) for j in presig.signers)
    path = b"".join(struct.pack(">I", i) for i in presig.derivation_path)
    for part in (
        RERANDOMIZE_TAG,
        presig.presign_id,
        presig.key_id,
        signers,
        presig.r_point,
        presig.public_key,
        path,
        rule.value.encode("ascii"),
        digest,
    ):
        h.update(struct.pack(">Q", len(part)))
        h.update(part)
    delta = int.from_bytes(h.digest(), "big") % order
    if delta == 0:  # probability 2^-256; refuse rather than sign with R' = identity
        raise BadInput("degenerate re-randomizer")
    return delta


@dataclass(frozen=True)
class _SigningInputs:
    """The round's carry: the presignature, the message as a scalar m and its digest, the
    re-randomized nonce point R' and its r, the child key, and this signer's share s_i."""

    group: Secp256k1Group
    presig: Presignature = field(repr=False)
    m: int
    digest: bytes
    r: int
    big_r: Point  # R' = δ·R, the signature's nonce point
    child_key: Point
    own_share: int = field(repr=False)


class SignRound(Round[int, None]):
    number = 1

    def __init__(self, ctx: _SigningInputs) -> None:
        self.ctx = ctx
        self.shares: dict[int, int] = {ctx.presig.index: ctx.own_share}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.ctx.presig.signers))

    def verify_broadcast(self, sender: int, body: bytes) -> int:
        """A canonical scalar s_j with s_j·R' == m·R_j + r·S_j, R_j and S_j from the
        presignature (checked points). Blames the sender."""
        c, g = self.ctx, self.ctx.group
        s_j = g.decode_scalar(body)
        r_j = g.decode(c.presig.r_shares[sender])
        big_s_j = g.decode(c.presig.s_shares[sender])
        lhs = g.mul(c.big_r, s_j)
        rhs = g.add(g.mul(r_j, c.m), g.mul(big_s_j, c.r))
        if not g.eq(lhs, rhs):
            raise ProtocolFault(sender, "bad signature share")
        return s_j

    def store_broadcast(self, sender: int, value: int) -> None:
        self.shares[sender] = value

    def finalize(self) -> Output | Abort:
        """s = Σ s_j (zero aborts naming nobody), normalized to low-s with the recovery id; the
        signature must verify under the child key (else abort naming nobody)."""
        c, g = self.ctx, self.ctx.group
        q = g.order
        s = sum(self.shares.values()) % q
        if s == 0:
            return Abort(frozenset(), "degenerate signature")
        v = 1 if g.y_is_odd(c.big_r) else 0
        if s > q // 2:
            s, v = q - s, v ^ 1
        sig = Signature(c.r, s, v, g.encode(c.child_key))
        if not PublicKey(sig.public_key).verify(sig.to_der(), c.digest, hasher=None):
            return Abort(frozenset(), "final signature does not verify")
        return Output(sig)


def start(
    session_id: bytes,
    share: KeyShare,
    presig: Presignature,
    digest: bytes,
    consume: Callable[[bytes], None],
    *,
    rule: MessageHash = MessageHash.RAW,
    path: Sequence[int] = (),
    group: Secp256k1Group | None = None,
) -> Driver:
    """A one-round signing session over the presignature's signer set.

    `digest` is the 32-byte message hash made by `rule` (enclave.protocols.gg20.message); `path`
    must be the non-hardened BIP32 path the presignature was made for.
    """
    g = group or Secp256k1Group()
    if len(digest) != DIGEST_LEN:
        raise BadInput("message digest must be 32 bytes")
    if presig.key_id != share.key_id or presig.index != share.index:
        raise BadInput("presignature belongs to another key or party")
    if tuple(path) != presig.derivation_path:
        raise BadInput("the presignature was made for another derivation path")
    q = g.order
    delta = rerandomizer(presig, rule, digest, q)
    big_r = g.mul(g.decode(presig.r_point), delta)
    x = g.x_coordinate(big_r)
    if x >= q:  # r = x mod q would lose the recovery id's high bit; probability ~2^-128
        raise BadInput("degenerate re-randomized nonce point")
    m = int.from_bytes(digest, "big") % q
    child_key = g.decode(presig.public_key)
    consume(presig.presign_id)  # durable single use: must succeed before a share exists
    s_i = pow(delta, -1, q) * (presig.k * m + x * presig.chi) % q
    first = SignRound(_SigningInputs(g, presig, m, bytes(digest), x, big_r, child_key, s_i))
    return Driver(
        session_id, presig.index, presig.signers, Next(first, (Send(None, g.encode_scalar(s_i)),)), total_rounds=1
    )
