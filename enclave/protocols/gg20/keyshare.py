"""A party's GG20 key share and its sealed-blob serialization.

`KeyShare.to_bytes()` is the plaintext the sealing layer encrypts; it starts with the version
and suite header `HEADER`, which the sealer should also use as associated data. It contains
secrets (x_i and the Paillier primes); nothing here writes it anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from enclave.crypto.paillier import SecretKey
from enclave.crypto.polynomial import lagrange_coefficient
from enclave.crypto.ringpedersen import Params
from enclave.errors import InvalidEncoding
from enclave.group.secp256k1 import Point, Secp256k1Group
from enclave.protocols.gg20.common import AuxInfo, framed_hash
from enclave.zk import wire
from enclave.zk.wire import CborReader

HEADER = b"mpc-signer/gg20/keyshare/v1/secp256k1"


@dataclass(frozen=True)
class KeyShare:
    index: int
    threshold: int
    parties: tuple[int, ...]
    secret: int = field(repr=False)  # x_i, the Shamir share of the key
    public_key: bytes  # Y, compressed
    public_shares: dict[int, bytes]  # X_j = x_j·G, compressed
    chain_code: bytes
    paillier_p: int = field(repr=False)
    paillier_q: int = field(repr=False)
    aux: dict[int, AuxInfo]  # every party's N, s, t (own included)

    @cached_property
    def paillier(self) -> SecretKey:
        return SecretKey(self.paillier_p, self.paillier_q)

    @cached_property
    def own_pedersen(self) -> Params:
        """This party's ring-Pedersen parameters with its factorization attached (CRT checks)."""
        a = self.aux[self.index]
        return Params(a.n, a.s, a.t, owner_key=self.paillier)

    @property
    def key_id(self) -> bytes:
        """Binds presignatures to this key: hash of the public key and chain code."""
        return framed_hash(b"mpc-signer/gg20/key-id/v1", self.public_key, self.chain_code)

    def public_point(self, group: Secp256k1Group) -> Point:
        return group.decode(self.public_key)

    def additive_share(self, signers: tuple[int, ...], order: int) -> int:
        """w_i = λ_i·x_i over the signer set."""
        return self.secret * lagrange_coefficient(order, self.index, signers) % order

    def to_bytes(self) -> bytes:
        return HEADER + wire.dumps(
            [
                self.index,
                self.threshold,
                list(self.parties),
                self.secret,
                self.public_key,
                {j: v for j, v in sorted(self.public_shares.items())},
                self.chain_code,
                self.paillier_p,
                self.paillier_q,
                {j: [a.n, a.s, a.t] for j, a in sorted(self.aux.items())},
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyShare:
        if not data.startswith(HEADER):
            raise InvalidEncoding("not a GG20 key share")
        r = CborReader(data[len(HEADER) :], 10)
        index, threshold = r.integer(), r.integer()
        parties = r.any()
        if type(parties) is not list or not all(type(p) is int for p in parties):
            raise InvalidEncoding("bad party list")
        secret, public_key = r.integer(), r.blob(33)
        shares = r.int_map()
        chain = r.blob(32)
        p, q = r.integer(), r.integer()
        aux_raw = r.int_map()
        aux = {}
        for j, v in aux_raw.items():
            if type(v) is not list or len(v) != 3 or not all(type(x) is int for x in v):
                raise InvalidEncoding("bad aux info")
            aux[j] = AuxInfo(v[0], v[1], v[2])
        if not all(type(v) is bytes for v in shares.values()):
            raise InvalidEncoding("bad public shares")
        return cls(index, threshold, tuple(parties), secret, public_key, shares, chain, p, q, aux)
