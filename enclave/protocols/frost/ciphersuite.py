"""FROST ciphersuites as values: the group, H1..H5 and the per-suite rules of RFC 9591.

Every function of this package takes the suite as its first argument (`cs`); there is no
default suite. Three suites, each byte-compatible with the ZcashFoundation frost crate named:

    FROST_ED25519       FROST(Ed25519, SHA-512)     RFC 9591 section 6.1    frost-ed25519
    FROST_SECP256K1     FROST(secp256k1, SHA-256)   RFC 9591 section 6.5    frost-secp256k1
    FROST_SECP256K1_TR  BIP340/BIP341 (Taproot)     ZF's own suite          frost-secp256k1-tr
                        (enclave.protocols.frost.taproot)

H1..H5 are the RFC's; HDKG and HID are ZF frost's extensions (the DKG proof-of-knowledge
challenge and identifier derivation), built like H1 with the tags "dkg" and "id".
- Ed25519: H1, H3, HDKG, HID = SHA-512(contextString || tag || m) read little-endian mod L;
  H2 = SHA-512(m) (the RFC 8032 challenge, so signatures verify as plain Ed25519);
  H4, H5 = SHA-512(contextString || tag || m).
- secp256k1: H1, H2, H3, HDKG, HID = hash_to_field(m) with DST = contextString || tag
  (expand_message_xmd, SHA-256, 48 bytes, see `hash_to_field`); H4, H5 = SHA-256(contextString
  || tag || m). Tags: "rho", "chal", "nonce", "msg", "com", "dkg", "id".

Identifiers are non-zero scalars, encoded as the suite's scalars (32 bytes little-endian for
Ed25519, big-endian for secp256k1). `identifier_from_int(n)` is ZF's `Identifier::try_from(n)`
(1 <= n <= 65535), `cs.derive_identifier(s)` is ZF's `Identifier::derive(s)` = HID(s).
Identifiers sort by their integer value, as ZF orders them and every RFC list is sorted.

Serialization header (ZF frost): format version 0 || CRC-32 of the context string, big endian.

Hooks (ZF's `Ciphersuite` trait methods of the same purpose; identity or default here, the
Taproot suite overrides them): `challenge`, `encode_signature` / `decode_signature`,
`verify_signature`, `proof_nonce` (ZF `generate_nonce`), `key_is_negated` / `effective_key`
/ `nonces_negated` (ZF `pre_sign`/`pre_aggregate` and `compute_signature_share`/`verify_share`),
`post_dkg`, `signing_keys` (ZF `sign_with_tweak`). `point` turns a stored encoding back into a
group element (free for Ed25519, whose elements are their encodings).
"""

from __future__ import annotations

import hashlib
import zlib
from typing import TYPE_CHECKING, Any, Protocol

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from enclave.crypto.rng import Rng
from enclave.errors import InvalidEncoding, InvalidParameters
from enclave.group.base import Element, Group
from enclave.group.ed25519 import ED25519
from enclave.group.secp256k1 import SECP256K1
from enclave.protocols.frost.hash_to_field import hash_to_scalar

if TYPE_CHECKING:
    from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage


class FrostGroup(Group, Protocol):
    """What FROST needs of a group beyond `Group` (both enclave groups provide it)."""

    def decode_mul(self, data: bytes, k: int) -> Element:
        """k * decode(data), strict (raises InvalidEncoding)."""
        ...

    def decode_trusted(self, data: bytes) -> Element:
        """An encoding authenticated by sealing (wire's sealed-share reader only)."""
        ...

    def sum(self, points: list[Any]) -> Element: ...


def identifier_from_int(n: int) -> int:
    if not 1 <= n <= 0xFFFF:
        raise InvalidParameters("small identifiers are 1..65535")
    return n


class Ciphersuite:
    """One FROST ciphersuite; instances are immutable values shared freely.

    `name` is the RFC's / ZF's name, `short_name` the one used in this project's domain tags
    and protocol names (frost-ed25519, frost-secp256k1, frost-secp256k1-tr).
    """

    name: str
    short_name: str
    context_string: bytes
    group: FrostGroup
    signature_len: int
    #: BIP340 rules (x-only keys, even-y handling); only the Taproot suite sets it.
    bip340 = False

    def __init__(self) -> None:
        self.header = b"\x00" + zlib.crc32(self.context_string).to_bytes(4, "big")
        self.order = self.group.order
        self.element_len = self.group.element_len

    def __repr__(self) -> str:
        return f"<Ciphersuite {self.name}>"

    # -- hash functions (RFC 9591 names) ----------------------------------------------------------

    def H1(self, m: bytes) -> int:
        return self._h_scalar(b"rho", m)

    def H2(self, m: bytes) -> int:
        raise NotImplementedError

    def H3(self, m: bytes) -> int:
        return self._h_scalar(b"nonce", m)

    def H4(self, m: bytes) -> bytes:
        return self._h_bytes(b"msg", m)

    def H5(self, m: bytes) -> bytes:
        return self._h_bytes(b"com", m)

    def HDKG(self, m: bytes) -> int:
        return self._h_scalar(b"dkg", m)

    def HID(self, m: bytes) -> int:
        return self._h_scalar(b"id", m)

    def _h_scalar(self, tag: bytes, m: bytes) -> int:
        raise NotImplementedError

    def _h_bytes(self, tag: bytes, m: bytes) -> bytes:
        raise NotImplementedError

    def point(self, encoding: bytes) -> Element:
        """The group element of an encoding this package validated (`decode`) or computed.

        Keys, commitments and shares are kept as encodings; this is how the arithmetic gets
        their elements back. Not a validity check: never for bytes straight from a peer."""
        raise NotImplementedError

    # -- identifiers ------------------------------------------------------------------------------

    def encode_identifier(self, ident: int) -> bytes:
        return self.group.encode_scalar(ident)

    def derive_identifier(self, s: bytes | str) -> int:
        ident = self.HID(s.encode() if isinstance(s, str) else bytes(s))
        if ident == 0:
            raise InvalidParameters("derived identifier is zero")
        return ident

    # -- signatures -------------------------------------------------------------------------------

    def challenge(self, r: bytes, verifying_key: bytes, message: bytes) -> int:
        """c = H2(SerializeElement(R) || SerializeElement(PK) || msg) (RFC 9591 section 4.6);
        `r` and `verifying_key` are encodings."""
        return self.H2(r + verifying_key + message)

    def encode_signature(self, r: bytes, z: int) -> bytes:
        """`r` is R's element encoding. RFC 9591: SerializeElement(R) || SerializeScalar(z)."""
        return r + self.group.encode_scalar(z)

    def decode_signature(self, data: bytes) -> tuple[bytes, int]:
        """(R's element encoding, z), strictly decoded."""
        n = self.element_len
        if len(data) != self.signature_len:
            raise InvalidEncoding(f"signature must be {self.signature_len} bytes")
        r = bytes(data[:n])
        self.group.decode(r)
        return r, self.group.decode_scalar(bytes(data[n:]))

    def verify_signature(self, signature: bytes, message: bytes, verifying_key: bytes) -> bool:
        """The plain Schnorr check z*G == R + c*PK (RFC 9591 appendix C)."""
        g = self.group
        try:
            r, z = self.decode_signature(signature)
            vk = g.decode(verifying_key)
        except InvalidEncoding:
            return False
        c = self.challenge(r, verifying_key, message)
        expected = g.sub(g.base_mul(z), g.mul(vk, c))
        return not g.is_identity(expected) and g.encode(expected) == r

    def proof_nonce(self, rng: Rng) -> tuple[int, Element]:
        """(k, k*G) for a DKG proof of knowledge (ZF `generate_nonce`)."""
        k = self.group.random_scalar(rng)
        return k, self.group.base_mul(k)

    # -- BIP340 hooks: no-ops for the RFC suites --------------------------------------------------

    def key_is_negated(self, verifying_key: bytes) -> bool:
        """Whether signing under `verifying_key` uses -key (BIP340: the key has an odd y)."""
        return False

    def effective_key(self, verifying_key: bytes) -> bytes:
        """The verifying key the binding factors and the challenge use."""
        return verifying_key

    def nonces_negated(self, group_commitment: bytes) -> bool:
        """Whether the nonces are negated for this R (BIP340: R has an odd y)."""
        return False

    def post_dkg(self, key: KeyPackage, public: PublicKeyPackage) -> tuple[KeyPackage, PublicKeyPackage]:
        return key, public

    def signing_keys(
        self, key: KeyPackage, public: PublicKeyPackage, merkle_root: bytes | None
    ) -> tuple[KeyPackage, PublicKeyPackage]:
        """The key packages a signature uses (Taproot: tweaked by a merkle root, if any)."""
        if merkle_root is not None:
            raise InvalidParameters("only Taproot keys take a merkle root")
        return key, public


class Ed25519Sha512(Ciphersuite):
    """FROST(Ed25519, SHA-512) (RFC 9591 section 6.1); signatures verify as RFC 8032 Ed25519."""

    name = "FROST(Ed25519, SHA-512)"
    short_name = "frost-ed25519"
    context_string = b"FROST-ED25519-SHA512-v1"
    group = ED25519
    signature_len = 64

    def _h_scalar(self, tag: bytes, m: bytes) -> int:
        return int.from_bytes(hashlib.sha512(self.context_string + tag + m).digest(), "little") % self.order

    def _h_bytes(self, tag: bytes, m: bytes) -> bytes:
        return hashlib.sha512(self.context_string + tag + m).digest()

    def point(self, encoding: bytes) -> Element:
        return encoding  # libsodium's elements are their encodings

    def H2(self, m: bytes) -> int:
        # No context string: H2 is the RFC 8032 challenge.
        return int.from_bytes(hashlib.sha512(m).digest(), "little") % self.order

    def verify_signature(self, signature: bytes, message: bytes, verifying_key: bytes) -> bool:
        """RFC 8032 verification by libsodium (the check every Ed25519 verifier applies)."""
        try:
            crypto_sign_open(bytes(signature) + message, verifying_key)
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True


class Secp256k1Sha256(Ciphersuite):
    """FROST(secp256k1, SHA-256) (RFC 9591 section 6.5).

    Signatures are SerializeElement(R) || SerializeScalar(z): 33-byte compressed R and 32-byte
    big-endian z, 65 bytes (RFC 9591 appendix E.5, ZF frost-secp256k1). The challenge hashes R's
    compressed encoding, so R's parity is part of the signature: no 64-byte form exists.
    """

    name = "FROST(secp256k1, SHA-256)"
    short_name = "frost-secp256k1"
    context_string = b"FROST-secp256k1-SHA256-v1"
    group = SECP256K1
    signature_len = 65

    def _h_scalar(self, tag: bytes, m: bytes) -> int:
        return hash_to_scalar(m, self.context_string + tag, self.order)

    def _h_bytes(self, tag: bytes, m: bytes) -> bytes:
        return hashlib.sha256(self.context_string + tag + m).digest()

    def point(self, encoding: bytes) -> Element:
        # libsecp256k1 holds points parsed: parsing is the only way in, and it validates.
        return SECP256K1.decode(encoding)

    def H2(self, m: bytes) -> int:
        return self._h_scalar(b"chal", m)


FROST_ED25519 = Ed25519Sha512()
FROST_SECP256K1 = Secp256k1Sha256()
