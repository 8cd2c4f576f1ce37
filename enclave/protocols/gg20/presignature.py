"""A presignature: one party's output of GG20 presigning, bound to one key, signer set and path.

Single use. It holds k_i and χ_i; signing twice with the same (k, χ) under two messages
reveals the key. The type cannot enforce "once" across process restarts, so signing takes
a `consume` hook (enclave.protocols.gg20.sign) that must durably mark `presign_id` used
(e.g. delete the sealed blob in a transaction) and return before any signature share is
computed into a message. `to_bytes()` is the plaintext the sealing layer encrypts; its header
`HEADER` doubles as associated data.

Bound to its derivation path (CVE-2025-66017): presigning takes the BIP32 path and makes the
presignature for the child key, χ_i = k_i·(w_i + τ) summing to k·(x + τ) and S_j = χ_j·R for
the tweak τ of the path; `public_key` is that child key. A path chosen after R is known is
therefore impossible: signing checks the request's path against `derivation_path`. Version 1
(no path) blobs are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from enclave.errors import InvalidEncoding
from enclave.zk import wire
from enclave.zk.wire import CborReader

HEADER = b"mpc-signer/gg20/presignature/v2/secp256k1"
MAX_PATH_DEPTH = 255


@dataclass(frozen=True)
class Presignature:
    presign_id: bytes  # the presign session id: the key of the consume hook
    key_id: bytes  # KeyShare.key_id of the key it was made for
    index: int
    signers: tuple[int, ...]
    r_point: bytes  # R = k^-1·G
    k: int = field(repr=False)
    chi: int = field(repr=False)  # share of k·(x + τ): already for the derived key
    r_shares: dict[int, bytes] = field(default_factory=dict)  # R_j = k_j·R
    s_shares: dict[int, bytes] = field(default_factory=dict)  # S_j = χ_j·R
    derivation_path: tuple[int, ...] = ()  # non-hardened BIP32 path fixed at presigning
    public_key: bytes = b""  # the child key of that path, compressed (what the signature verifies under)

    def to_bytes(self) -> bytes:
        return HEADER + wire.dumps(
            [
                self.presign_id,
                self.key_id,
                self.index,
                list(self.signers),
                self.r_point,
                self.k,
                self.chi,
                self.r_shares,
                self.s_shares,
                list(self.derivation_path),
                self.public_key,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Presignature:
        if not data.startswith(HEADER):
            raise InvalidEncoding("not a GG20 presignature of this version (v2, bound to a derivation path)")
        r = CborReader(data[len(HEADER) :], 11)
        pid, kid, index = r.blob(), r.blob(32), r.integer()
        signers = r.any()
        if type(signers) is not list or not all(type(p) is int for p in signers):
            raise InvalidEncoding("bad signer list")
        r_point, k, chi = r.blob(33), r.integer(), r.integer()
        rs, ss = r.int_map(), r.int_map()
        if not all(type(v) is bytes for v in list(rs.values()) + list(ss.values())):
            raise InvalidEncoding("bad presignature shares")
        path = r.any()
        if (
            type(path) is not list
            or len(path) > MAX_PATH_DEPTH
            or not all(type(i) is int and 0 <= i < 2**31 for i in path)
        ):
            raise InvalidEncoding("bad derivation path")
        public_key = r.blob(33)
        return cls(pid, kid, index, tuple(signers), r_point, k, chi, rs, ss, tuple(path), public_key)
