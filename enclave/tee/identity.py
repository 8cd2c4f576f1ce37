"""The enclave's identity key: an ephemeral P-256 key pair made in enclave memory at start.

Its public key is what an attestation document binds (`public_key`), so a caller that verified
the document knows this key belongs to the measured enclave and can pin it for the lifetime of
the process. The private key never leaves this object: it is not sealed, not written, not
logged; a restart makes a new pair (callers re-attest). Python cannot wipe it from memory; the
enclave boundary is what protects it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


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
