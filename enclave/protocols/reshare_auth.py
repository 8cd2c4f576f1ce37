"""Who sent a reshare's round-one message: the authentication both reshare protocols put on it.

A dealer encrypts its sub-shares to keys that arrive in round one through the untrusted host; a
host posing as enough receivers would collect enough sub-shares to rebuild the dealer's share.
So every round-one broadcast is authenticated, by the sender's role:

- a dealer (it holds a share s_i of the source key): a Schnorr proof of knowledge of s_i under its
  verification share Y_i = s_i*G (enclave.zk.schnorr), its transcript bound to AUTH_TAG, the
  protocol, the session id, the sender's session party id and the payload;
- a party listed in new_party_keys (it holds nothing of the key): an ECDSA P-256 / SHA-256
  signature, r || s (32 bytes each), by its listed key over `signed_message` (the same context,
  each field length-prefixed).

Who checks what: a party that holds the source key's verification shares (every dealer) checks
both kinds; a party new to the key has no verification shares, so it checks the listed parties'
signatures only and takes the dealers' messages unchecked (a host can feed it a fake session:
it learns nothing from that, the new party ends with a useless share).

Wire form: lp32(payload) || lp32(authenticator). Pure: the signing key stays with the caller,
which passes `sign` (message -> r || s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from door.encoding import lp32, u32
from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.errors import EnclaveError, InvalidEncoding, InvalidParameters, ProtocolFault
from enclave.group.base import Element, Group
from enclave.zk import schnorr

AUTH_TAG = b"mpc-signer/reshare/round1-auth/v1"
P256_KEY_LEN = 65  # SEC1 uncompressed
SIGNATURE_LEN = 64  # r || s

Sign = Callable[[bytes], bytes]  # message -> ECDSA P-256 / SHA-256 signature, r || s
NOT_AUTHENTICATED = "round-one message not authenticated"


def decode_p256(data: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its 65-byte SEC1 uncompressed encoding (InvalidEncoding otherwise)."""
    if len(data) != P256_KEY_LEN or data[0] != 4:
        raise InvalidEncoding("not a SEC1 uncompressed P-256 point (65 bytes, 0x04 first)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(data))
    except ValueError:
        raise InvalidEncoding("not a point of P-256") from None


def signed_message(protocol: str, session_id: bytes, sender: int, payload: bytes) -> bytes:
    """What a listed party signs (ECDSA hashes it with SHA-256)."""
    return lp32(AUTH_TAG) + lp32(protocol.encode()) + lp32(session_id) + u32(sender) + lp32(payload)


def verify_signature(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != SIGNATURE_LEN:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def unframe(data: bytes) -> tuple[bytes, bytes]:
    """(payload, authenticator) from lp32(payload) || lp32(authenticator); InvalidEncoding."""
    parts = []
    rest = data
    for _ in range(2):
        if len(rest) < 4 or len(rest) - 4 < int.from_bytes(rest[:4], "big"):
            raise InvalidEncoding("truncated")
        n = int.from_bytes(rest[:4], "big")
        parts.append(bytes(rest[4 : 4 + n]))
        rest = rest[4 + n :]
    if rest:
        raise InvalidEncoding("trailing bytes")
    return parts[0], parts[1]


@dataclass(frozen=True)
class ReshareAuth:
    """One party's view of who may send what in round one. `verification_shares` holds every
    dealer's Y_i when this party has the source key's public shares (a dealer), else nothing."""

    group: Group
    protocol: str  # the reshare protocol's name, bound into every authenticator
    session_id: bytes
    party: int
    dealers: frozenset[int]
    listed: Mapping[int, bytes]  # party -> its P-256 key (SEC1 uncompressed)
    rng: Rng = field(repr=False)
    verification_shares: Mapping[int, Element] = field(default_factory=dict)
    secret: int | None = field(default=None, repr=False)  # this dealer's source share s_i
    sign: Sign | None = field(default=None, repr=False)  # this listed party's signing key
    _keys: dict[int, ec.EllipticCurvePublicKey] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.dealers & set(self.listed):
            raise InvalidParameters("a party is a dealer or listed with a key, not both")
        try:
            self._keys.update({p: decode_p256(k) for p, k in self.listed.items()})
        except InvalidEncoding:
            raise InvalidParameters("a listed key is not a P-256 public key") from None
        if self.verification_shares and set(self.verification_shares) != self.dealers:
            raise InvalidParameters("need every dealer's verification share, or none")
        g = self.group
        if self.party in self.dealers:
            if self.secret is None or self.party not in self.verification_shares:
                raise InvalidParameters("a dealer authenticates with its source share")
            if not g.eq(g.base_mul(self.secret), self.verification_shares[self.party]):
                raise InvalidParameters("the source share does not match its verification share")
        elif self.party not in self.listed or self.sign is None:
            raise InvalidParameters("a party that deals nothing must be listed with a key and sign")

    def _transcript(self, sender: int, payload: bytes) -> Transcript:
        tr = Transcript(AUTH_TAG.decode(), session_id=self.session_id, protocol=self.protocol, round=1, party=sender)
        tr.append("payload", payload)
        return tr

    def seal(self, payload: bytes) -> bytes:
        """This party's round-one broadcast: the payload with its proof or signature."""
        if self.party in self.dealers:
            assert self.secret is not None
            statement = schnorr.Statement(self.group, self.verification_shares[self.party])
            proof = schnorr.prove(
                self._transcript(self.party, payload), statement, schnorr.Witness(self.secret), self.rng
            )
            auth = schnorr.encode(self.group, proof)
        else:
            assert self.sign is not None
            message = signed_message(self.protocol, self.session_id, self.party, payload)
            auth = self.sign(message)
            # Cheap, and a wrong key would otherwise show up only as the peers' aborts.
            if not verify_signature(self._keys[self.party], auth, message):
                raise InvalidParameters("this party's signing key is not its listed key")
        return lp32(payload) + lp32(auth)

    def open(self, sender: int, body: bytes) -> bytes:
        """The payload of `sender`'s round-one broadcast once its authenticator checks (as far as
        this party can check it); a ProtocolFault naming the sender otherwise."""
        try:
            payload, auth = unframe(body)
        except InvalidEncoding:
            raise ProtocolFault(sender, "malformed reshare round-one authentication") from None
        if sender in self._keys:
            message = signed_message(self.protocol, self.session_id, sender, payload)
            if not verify_signature(self._keys[sender], auth, message):
                raise ProtocolFault(sender, f"{NOT_AUTHENTICATED}: bad signature for its new_party_keys key")
            return payload
        if sender not in self.dealers:
            raise ProtocolFault(sender, f"{NOT_AUTHENTICATED}: neither a dealer nor listed")
        try:
            proof = schnorr.decode(self.group, auth)
        except EnclaveError:
            raise ProtocolFault(sender, f"{NOT_AUTHENTICATED}: malformed proof of its source share") from None
        if self.verification_shares:
            statement = schnorr.Statement(self.group, self.verification_shares[sender])
            if not schnorr.verify(self._transcript(sender, payload), statement, proof):
                raise ProtocolFault(sender, f"{NOT_AUTHENTICATED}: bad proof of its source share")
        return payload
