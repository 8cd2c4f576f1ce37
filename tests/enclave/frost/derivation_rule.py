"""The FROST derivation rule and chain code, written again from the README's statement of them
with libsodium (PyNaCl) and libsecp256k1 (coincurve) point arithmetic and nothing of
enclave.protocols.frost: what a wallet outside the enclave would write to find its child keys.

    child_key("frost-ed25519" | "frost-secp256k1" | "frost-secp256k1-tr", public_key, chain_code, path)

`public_key` and the result are the keys as the API shows them (32, 33, 32 x-only bytes).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence

from coincurve import PublicKey
from nacl.bindings import crypto_core_ed25519_add, crypto_scalarmult_ed25519_base_noclamp

ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _order(suite: str) -> int:
    return ED25519_ORDER if suite == "frost-ed25519" else SECP256K1_ORDER


def step(suite: str, chain: bytes, parent: bytes, index: int) -> tuple[int, bytes]:
    head = _lp(b"mpc-signer/frost/derive/v1") + _lp(suite.encode())
    tail = _lp(chain) + _lp(parent) + struct.pack(">I", index)
    t = int.from_bytes(hashlib.sha512(head + _lp(b"tweak") + tail).digest(), "big") % _order(suite)
    return t, hashlib.sha512(head + _lp(b"chain-code") + tail).digest()[:32]


def _add_base(suite: str, key: bytes, t: int) -> bytes:
    if suite == "frost-ed25519":
        return bytes(crypto_core_ed25519_add(key, crypto_scalarmult_ed25519_base_noclamp(t.to_bytes(32, "little"))))
    if suite == "frost-secp256k1":
        return PublicKey.combine_keys([PublicKey(key), PublicKey.from_secret(t.to_bytes(32, "big"))]).format()
    # Taproot: the parent is lift_x(x), the point with an even y; the child is shown x-only.
    point = PublicKey.combine_keys([PublicKey(b"\x02" + key), PublicKey.from_secret(t.to_bytes(32, "big"))])
    return point.format()[1:]


def child_key(suite: str, public_key: bytes, chain: bytes, path: Sequence[int]) -> tuple[bytes, bytes]:
    """(child public key as the API shows it, child chain code)."""
    key = public_key
    for index in path:
        t, chain = step(suite, chain, key, index)
        key = _add_base(suite, key, t)
    return key, chain


def chain_code(suite: str, public_key: bytes, round1: Mapping[bytes, bytes]) -> bytes:
    """From the DKG's round-1 broadcasts: {identifier's 32-byte scalar encoding: ZF package}."""

    def as_int(ident: bytes) -> int:
        return int.from_bytes(ident, "little" if suite == "frost-ed25519" else "big")

    h = hashlib.sha256(_lp(b"mpc-signer/frost/chain-code/v1") + _lp(suite.encode()) + _lp(public_key))
    h.update(struct.pack(">I", len(round1)))
    for ident in sorted(round1, key=as_int):
        h.update(_lp(ident) + _lp(round1[ident]))
    return h.digest()
