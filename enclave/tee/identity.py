"""The enclave's identity key: an ephemeral P-256 key pair made in enclave memory at start.

Its public key is what an attestation document binds (`public_key`), so a caller that verified
the document knows this key belongs to the measured enclave and can pin it for the lifetime of
the process. The private key never leaves this object: it is not sealed, not written, not
logged; a restart makes a new pair (callers re-attest). Python cannot wipe it from memory; the
enclave boundary is what protects it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


@dataclass(frozen=True)
class EnclaveIdentity:
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> EnclaveIdentity:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> bytes:
        """Uncompressed SEC1 point (65 bytes)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 over SHA-256(message), r || s (32 bytes each), deterministic (RFC 6979):
        what a reshare party listed in new_party_keys puts on its round-one message."""
        der = self.private_key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
