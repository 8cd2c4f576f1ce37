"""GG20 online signing: one round, with a per-share check that names a bad signer.

Each signer i sends s_i = k_i·m + r·(χ_i + τ·k_i), where τ is the BIP32 tweak of the
derivation path (0 for the root key): Σk_i = k and Σχ_i = k·x, so Σ(χ_i + τ·k_i) = k·(x + τ)
and s = Σs_i = k(m + r·(x + τ)) is an ECDSA signature under the child key with nonce point
R = k^-1·G. A received share is checked alone: s_j·R == m·R_j + r·(S_j + τ·R_j) with R_j, S_j
from the presignature, so a bad share aborts naming its sender. The aggregate is verified
(libsecp256k1) before it is output; a failure is terminal for the presignature, which was
consumed before our share left.

Single use: `start` calls `consume(presign_id)` before it computes the share into a message;
the hook must durably record the presignature as used (and raise if it already was). Nothing is
sent when it raises.

Output: `Signature` with r, s (low-s normalized), v (recovery id in {0, 1}); `to_bytes()` gives
the 65-byte r || s || v, `to_der()` the DER form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from coincurve import PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from enclave.bip32 import derive
from enclave.errors import BadInput, ProtocolFault
from enclave.group.secp256k1 import Point, Secp256k1Group
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.presignature import Presignature
from enclave.protocols.rounds import Abort, Driver, Expect, Kind, Next, Output, Round, Send

PROTOCOL = "gg20/sign"


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


@dataclass(frozen=True)
class _Ctx:
    group: Secp256k1Group
    presig: Presignature = field(repr=False)
    m: int
    digest: bytes
    r: int
    big_r: Point
    tweak: int
    child_key: Point


class SignRound(Round):
    number = 1

    def __init__(self, ctx: _Ctx, own_share: int):
        self.ctx = ctx
        self.shares: dict[int, int] = {ctx.presig.index: own_share}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.ctx.presig.signers))

    def verify(self, sender: int, kind: Kind, body: bytes) -> int:
        c, g = self.ctx, self.ctx.group
        s_j = g.decode_scalar(body)
        r_j = g.decode(c.presig.r_shares[sender])
        big_s_j = g.add(g.decode(c.presig.s_shares[sender]), g.mul(r_j, c.tweak))
        lhs = g.mul(c.big_r, s_j)
        rhs = g.add(g.mul(r_j, c.m), g.mul(big_s_j, c.r))
        if not g.eq(lhs, rhs):
            raise ProtocolFault(sender, "bad signature share")
        return s_j

    def store(self, sender: int, kind: Kind, value: int) -> None:
        self.shares[sender] = value

    def finalize(self) -> Output | Abort:
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
    path: tuple[int, ...] = (),
    group: Secp256k1Group | None = None,
) -> Driver:
    """A one-round signing session over the presignature's signer set.

    `digest` is the 32-byte message hash; `path` a non-hardened BIP32 path under the key.
    """
    g = group or Secp256k1Group()
    if len(digest) != 32:
        raise BadInput("message digest must be 32 bytes")
    if presig.key_id != share.key_id or presig.index != share.index:
        raise BadInput("presignature belongs to another key or party")
    derived = derive(g, share.public_point(g), share.chain_code, path)
    big_r = g.decode(presig.r_point)
    q = g.order
    r = g.x_coordinate(big_r) % q
    m = int.from_bytes(digest, "big") % q
    ctx = _Ctx(g, presig, m, bytes(digest), r, big_r, derived.tweak, derived.public_key)
    consume(presig.presign_id)  # durable single use: must succeed before a share exists
    s_i = (presig.k * m + r * (presig.chi + derived.tweak * presig.k)) % q
    first = SignRound(ctx, s_i)
    return Driver(session_id, presig.index, presig.signers, Next(first, (Send(None, g.encode_scalar(s_i)),)),
                  total_rounds=1)
