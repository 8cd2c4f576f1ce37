"""ZF frost's postcard encodings for every FROST suite, byte for byte.

ZF frost serializes with serde + postcard: structs are their fields in order, u8 is one byte,
u16 and lengths are LEB128 varints, fixed arrays (scalars, elements) are raw bytes, byte
vectors and maps are a varint count followed by the items, `Option` is 0x00 | 0x01 value.
Every top-level object starts with the suite's header `0x00 (format version) || CRC-32 of the
context string` big endian (`cs.header`; Ed25519 b1 69 f0 da). Scalars and identifiers are the
suite's scalar encoding (32 bytes; little-endian Ed25519, big-endian secp256k1), elements its
element encoding (32 bytes Ed25519, 33 compressed secp256k1), signatures `cs.encode_signature`
(Ed25519 R || z 64, secp256k1 R || z 65, Taproot x(R) || z 64).

    SigningCommitments  header || hiding || binding
    SigningNonces       header || hiding scalar || binding scalar || SigningCommitments
    SigningPackage      header || n || n * (identifier || SigningCommitments) || len || message
    SignatureShare      scalar                             (ZF `SignatureShare::serialize`)
    SecretShare         header || identifier || signing share || t || t * element
    KeyPackage          header || identifier || signing share || verifying share || verifying key || t
    PublicKeyPackage    header || n || n * (identifier || verifying share) || verifying key
                        [|| 0x01 || t]                     (min_signers, newer ZF versions)
    dkg round1 Package  header || t || t * element || len || Signature (proof of knowledge)
    dkg round2 Package  header || signing share

Decoding is strict and raises `InvalidEncoding`: wrong header, non-minimal varints, elements
that are not canonical prime-order non-identity points, scalars >= the order, zero identifiers,
map keys not strictly increasing (ZF's BTreeMap order), lengths out of range, trailing bytes.
One deliberate exception: a binding nonce commitment E is validated where it is used, by the
checked multiplication in `signing.signing_context` (see `signing.SigningCommitments`), which
saves a redundant subgroup check per signer; it never reaches any other arithmetic.

`decode_sealed_key_package` / `decode_sealed_public_key_package` are not wire decoders: they
read the key packages back out of an enclave-sealed key share (authenticated plaintext, see
`_SealedReader`) and skip the point validity checks; nothing a peer sends reaches them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from enclave.errors import InvalidEncoding
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.dkg import Round1Package
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage, SecretShare
from enclave.protocols.frost.signing import SigningCommitments, SigningNonces, SigningPackage

T = TypeVar("T")

MAX_SIGNERS = 255
MAX_MESSAGE = 1 << 20


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class FrostWireReader:
    __slots__ = ("cs", "data", "pos")

    def __init__(self, cs: Ciphersuite, data: bytes) -> None:
        self.cs = cs
        self.data = bytes(data)
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise InvalidEncoding("truncated")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def varint(self, max_value: int) -> int:
        value, shift = 0, 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b == 0 and shift > 7:
                    raise InvalidEncoding("non-minimal varint")
                break
            if shift > 63:
                raise InvalidEncoding("varint too long")
        if value > max_value:
            raise InvalidEncoding("length out of range")
        return value

    def header(self) -> None:
        if self.take(5) != self.cs.header:
            raise InvalidEncoding(f"not a {self.cs.name} v0 object")

    def raw_element(self) -> bytes:
        """An element's bytes, not validated (the caller validates them where they are used)."""
        return self.take(self.cs.element_len)

    def element(self) -> bytes:
        raw = self.raw_element()
        self.cs.group.decode(raw)
        return raw

    def scalar(self) -> int:
        return self.cs.group.decode_scalar(self.take(32))

    def identifier(self) -> int:
        ident = self.scalar()
        if ident == 0:
            raise InvalidEncoding("zero identifier")
        return ident

    def done(self) -> None:
        if self.pos != len(self.data):
            raise InvalidEncoding("trailing bytes")


# -- signing ------------------------------------------------------------------------------------


def encode_signing_commitments(cs: Ciphersuite, c: SigningCommitments) -> bytes:
    return cs.header + c.hiding + c.binding


def _read_commitments(r: FrostWireReader) -> SigningCommitments:
    r.header()
    # The binding commitment is validated by the checked multiplication in
    # `signing.signing_context`, its only use as a point (see `SigningCommitments`).
    return SigningCommitments(r.element(), r.raw_element())


def decode_signing_commitments(cs: Ciphersuite, data: bytes) -> SigningCommitments:
    r = FrostWireReader(cs, data)
    c = _read_commitments(r)
    r.done()
    return c


def encode_signing_nonces(cs: Ciphersuite, n: SigningNonces) -> bytes:
    g = cs.group
    return (
        cs.header
        + g.encode_scalar(n.hiding)
        + g.encode_scalar(n.binding)
        + encode_signing_commitments(cs, n.commitments)
    )


def decode_signing_nonces(cs: Ciphersuite, data: bytes) -> SigningNonces:
    r = FrostWireReader(cs, data)
    r.header()
    d, e = r.scalar(), r.scalar()
    c = _read_commitments(r)
    r.done()
    g = cs.group
    if d == 0 or e == 0 or g.encode(g.base_mul(d)) != c.hiding or g.encode(g.base_mul(e)) != c.binding:
        raise InvalidEncoding("nonces do not match their commitments")
    return SigningNonces(d, e, c)


def encode_signing_package(cs: Ciphersuite, p: SigningPackage) -> bytes:
    parts = [cs.header, varint(len(p.commitments))]
    for i in sorted(p.commitments):
        parts += [cs.encode_identifier(i), encode_signing_commitments(cs, p.commitments[i])]
    parts += [varint(len(p.message)), p.message]
    return b"".join(parts)


def _read_id_map(r: FrostWireReader, read_value: Callable[[FrostWireReader], T]) -> dict[int, T]:
    """A postcard map keyed by identifier, keys strictly increasing (ZF's BTreeMap order)."""
    n = r.varint(MAX_SIGNERS)
    out: dict[int, T] = {}
    prev = 0
    for _ in range(n):
        ident = r.identifier()
        if ident <= prev:
            raise InvalidEncoding("map keys not strictly increasing")
        prev = ident
        out[ident] = read_value(r)
    return out


def decode_signing_package(cs: Ciphersuite, data: bytes) -> SigningPackage:
    r = FrostWireReader(cs, data)
    r.header()
    commitments = _read_id_map(r, _read_commitments)
    message = r.take(r.varint(MAX_MESSAGE))
    r.done()
    return SigningPackage(commitments, message)


def encode_signature_share(cs: Ciphersuite, z: int) -> bytes:
    return cs.group.encode_scalar(z)


def decode_signature_share(cs: Ciphersuite, data: bytes) -> int:
    return cs.group.decode_scalar(bytes(data))


def decode_signature(cs: Ciphersuite, data: bytes) -> tuple[bytes, int]:
    """(R's element encoding, z) of a signature in the suite's format, strictly."""
    return cs.decode_signature(data)


# -- keys ---------------------------------------------------------------------------------------


def _commitment_vector(commitment: tuple[bytes, ...]) -> bytes:
    return varint(len(commitment)) + b"".join(commitment)


def _read_commitment_vector(r: FrostWireReader) -> tuple[bytes, ...]:
    t = r.varint(MAX_SIGNERS)
    if t < 1:
        raise InvalidEncoding("empty commitment")
    return tuple(r.element() for _ in range(t))


def encode_secret_share(cs: Ciphersuite, s: SecretShare) -> bytes:
    return (
        cs.header
        + cs.encode_identifier(s.identifier)
        + cs.group.encode_scalar(s.signing_share)
        + _commitment_vector(s.commitment)
    )


def decode_secret_share(cs: Ciphersuite, data: bytes) -> SecretShare:
    r = FrostWireReader(cs, data)
    r.header()
    s = SecretShare(r.identifier(), r.scalar(), _read_commitment_vector(r))
    r.done()
    return s


def encode_key_package(cs: Ciphersuite, k: KeyPackage) -> bytes:
    return (
        cs.header
        + cs.encode_identifier(k.identifier)
        + cs.group.encode_scalar(k.signing_share)
        + k.verifying_share
        + k.verifying_key
        + varint(k.min_signers)
    )


def _read_key_package(r: FrostWireReader) -> KeyPackage:
    r.header()
    k = KeyPackage(r.identifier(), r.scalar(), r.element(), r.element(), r.varint(0xFFFF))
    r.done()
    return k


def decode_key_package(cs: Ciphersuite, data: bytes) -> KeyPackage:
    k = _read_key_package(FrostWireReader(cs, data))
    if k.signing_share == 0 or cs.group.encode(cs.group.base_mul(k.signing_share)) != k.verifying_share:
        raise InvalidEncoding("signing share does not match the verifying share")
    return k


def encode_public_key_package(cs: Ciphersuite, p: PublicKeyPackage) -> bytes:
    parts = [cs.header, varint(len(p.verifying_shares))]
    for i in sorted(p.verifying_shares):
        parts += [cs.encode_identifier(i), p.verifying_shares[i]]
    parts.append(p.verifying_key)
    if p.min_signers is not None:
        parts += [b"\x01", varint(p.min_signers)]
    return b"".join(parts)


def decode_public_key_package(cs: Ciphersuite, data: bytes) -> PublicKeyPackage:
    return _read_public_key_package(FrostWireReader(cs, data))


def _read_public_key_package(r: FrostWireReader) -> PublicKeyPackage:
    r.header()
    shares = _read_id_map(r, lambda rr: rr.element())  # the subclass's element for sealed bytes
    vk = r.element()
    min_signers: int | None = None
    if r.pos < len(r.data):
        tag = r.take(1)[0]
        if tag == 1:
            min_signers = r.varint(0xFFFF)
        elif tag != 0:
            raise InvalidEncoding("bad option tag")
    r.done()
    return PublicKeyPackage(shares, vk, min_signers)


# -- sealed key shares (never from the wire) ------------------------------------------------------


class _SealedReader(FrostWireReader):
    """`FrostWireReader` for the key packages inside an enclave-sealed key share, and nothing else.

    Elements skip what the suite's `decode_trusted` skips (Ed25519: the curve and
    prime-order-subgroup checks; secp256k1 parses, which is its check); every structural check
    stays (header, lengths, varints, scalars < order, non-zero and increasing identifiers, no
    identity, no trailing bytes). Safe because these bytes are the
    plaintext of an AEAD envelope sealed by an enclave holding the sealing key (enclave.sealing;
    the associated data binds format version, key id, protocol, party and purpose "share"), and
    the only code that seals a FROST key share is the engine's FROST DKG, whose output points
    all passed `decode` or were computed from points that did. Nothing unauthenticated gets here.
    """

    __slots__ = ()

    def element(self) -> bytes:
        raw = self.raw_element()
        self.cs.group.decode_trusted(raw)
        return raw


def decode_sealed_key_package(cs: Ciphersuite, data: bytes) -> KeyPackage:
    """`decode_key_package` for the authenticated plaintext of a sealed key share only.

    Also skips the signing-share/verifying-share consistency multiplication: the DKG set the
    verifying share to signing_share*G itself (`dkg.part3`), and the AEAD rules out any change.
    """
    return _read_key_package(_SealedReader(cs, data))


def decode_sealed_public_key_package(cs: Ciphersuite, data: bytes) -> PublicKeyPackage:
    """`decode_public_key_package` for the authenticated plaintext of a sealed key share only."""
    return _read_public_key_package(_SealedReader(cs, data))


# -- dkg ---------------------------------------------------------------------------------------


def encode_round1_package(cs: Ciphersuite, p: Round1Package) -> bytes:
    return (
        cs.header
        + _commitment_vector(p.commitment)
        + varint(cs.signature_len)
        + cs.encode_signature(p.proof_r, p.proof_z)
    )


def parse_round1_package(cs: Ciphersuite, data: bytes) -> Round1Package:
    """Everything of `decode_round1_package` except validating phi_0 and R as points.

    Only for `dkg.check_round1_package`, which validates both as part of the proof check:
    phi_0 through the checked multiplication c*phi_0 (`decode_mul` applies `decode`'s checks)
    and R by byte equality with the encoding of the valid point z*G - c*phi_0. That saves two
    subgroup checks per package (Ed25519); the other coefficients are decoded strictly here.
    A Taproot proof carries x(R) only: R is the point with that x and an even y (ZF's
    `deserialize_signature`), so its encoding is 0x02 || x.
    """
    r = FrostWireReader(cs, data)
    r.header()
    t = r.varint(MAX_SIGNERS)
    if t < 1:
        raise InvalidEncoding("empty commitment")
    phi0 = r.raw_element()
    commitment = (phi0, *(r.element() for _ in range(t - 1)))
    if r.varint(cs.signature_len) != cs.signature_len:
        raise InvalidEncoding(f"proof of knowledge must be a {cs.signature_len}-byte signature")
    proof_r = r.take(cs.signature_len - 32)
    if cs.bip340:
        proof_r = b"\x02" + proof_r
    proof_z = r.scalar()
    r.done()
    return Round1Package(commitment, proof_r, proof_z)


def decode_round1_package(cs: Ciphersuite, data: bytes) -> Round1Package:
    package = parse_round1_package(cs, data)
    cs.group.decode(package.commitment[0])
    cs.group.decode(package.proof_r)
    return package


def encode_round2_package(cs: Ciphersuite, share: int) -> bytes:
    return cs.header + cs.group.encode_scalar(share)


def decode_round2_package(cs: Ciphersuite, data: bytes) -> int:
    r = FrostWireReader(cs, data)
    r.header()
    s = r.scalar()
    r.done()
    return s
