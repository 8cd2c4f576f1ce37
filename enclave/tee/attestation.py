"""Attestation: evidence of which code holds the keys, produced inside the enclave.

Two modes. `none` (off Nitro) produces no evidence and says so: nothing vouches for the process.
`nitro` asks the Nitro Secure Module (/dev/nsm) for an attestation document that binds the
enclave's public key, caller-chosen user data and the caller's nonce to the enclave image's
measurements (PCRs), signed by the AWS Nitro PKI. The caller verifies it with
`signer.client.attestation.verify_attestation`.

The NSM request itself is the `aws-nsm-interface` package: a CBOR request
`{"Attestation": {"user_data", "nonce", "public_key"}}` passed by ioctl(0xC0200A00) on /dev/nsm.
That ioctl runs only inside a Nitro enclave; everything around it is tested off Nitro.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, Protocol

from enclave.errors import BadInput, LocalError

NONE_MODE: Final = "none"
NITRO_MODE: Final = "nitro"
NSM_DEVICE: Final = "/dev/nsm"
# Limits the NSM enforces on the request (aws-nitro-enclaves-nsm-api); checked here first so a
# caller gets a clear error instead of an opaque NSM one.
MAX_PUBLIC_KEY: Final = 1024
MAX_USER_DATA: Final = 512
MAX_NONCE: Final = 512
NSM_RANDOM_MAX: Final = 256

NO_ATTESTATION_STATEMENT: Final = (
    "attestation mode is 'none': this enclave process is not running in a TEE and no hardware "
    "vouches for the code holding the keys"
)


class AttestationUnavailable(LocalError):
    """The NSM could not produce a document (device missing, NSM error)."""


@dataclass(frozen=True)
class Attestation:
    """What the enclave hands out. In mode `none` `document` is empty and `statement` says why."""

    mode: str
    document: bytes
    statement: str


class Attestor(Protocol):
    @property
    def mode(self) -> str: ...

    def attest(self, *, public_key: bytes, user_data: bytes, nonce: bytes) -> Attestation: ...


def _check_request(public_key: bytes, user_data: bytes, nonce: bytes) -> None:
    if len(public_key) > MAX_PUBLIC_KEY:
        raise BadInput(f"public key longer than {MAX_PUBLIC_KEY} bytes")
    if len(user_data) > MAX_USER_DATA:
        raise BadInput(f"user data longer than {MAX_USER_DATA} bytes")
    if not nonce or len(nonce) > MAX_NONCE:
        raise BadInput(f"nonce must be 1..{MAX_NONCE} bytes")


class NoneAttestor:
    """Off Nitro. Returns no evidence, never a document that could be mistaken for one."""

    @property
    def mode(self) -> str:
        return NONE_MODE

    def attest(self, *, public_key: bytes, user_data: bytes, nonce: bytes) -> Attestation:
        _check_request(public_key, user_data, nonce)
        return Attestation(NONE_MODE, b"", NO_ATTESTATION_STATEMENT)


class NitroAttestor:
    """Inside a Nitro enclave: documents from the NSM. Opens the device once, at construction."""

    def __init__(self, device_path: str = NSM_DEVICE) -> None:
        import aws_nsm_interface  # only importable use is on Nitro; keep it out of the off-Nitro path

        self._nsm: Any = aws_nsm_interface
        try:
            # unbuffered binary handle: ioctl only needs the descriptor
            self._device: BinaryIO = open(device_path, "r+b", buffering=0)  # noqa: SIM115 — lives as long as self
        except OSError as exc:
            raise AttestationUnavailable(
                f"cannot open the Nitro Secure Module at {device_path}: {exc.strerror}"
            ) from None

    @property
    def mode(self) -> str:
        return NITRO_MODE

    def attest(self, *, public_key: bytes, user_data: bytes, nonce: bytes) -> Attestation:
        _check_request(public_key, user_data, nonce)
        try:
            response = self._nsm.get_attestation_doc(
                self._device, user_data=user_data or None, nonce=nonce, public_key=public_key or None
            )
        except (OSError, self._nsm.IoctlError) as exc:
            raise AttestationUnavailable(f"NSM refused the attestation request: {exc}") from None
        document = response.get("document") if isinstance(response, dict) else None
        if not isinstance(document, bytes) or not document:
            raise AttestationUnavailable("NSM answered without an attestation document")
        return Attestation(NITRO_MODE, document, "AWS Nitro Enclaves attestation document (COSE_Sign1, ES384)")

    def random_bytes(self, n: int) -> bytes:
        """`n` bytes from the NSM's hardware generator (at most 256 per request)."""
        if not 1 <= n <= NSM_RANDOM_MAX:
            raise BadInput(f"NSM random requests are 1..{NSM_RANDOM_MAX} bytes")
        try:
            response = self._nsm.get_random(self._device, n)
        except (OSError, AttributeError, self._nsm.IoctlError) as exc:
            # the library raises AttributeError when the NSM answers with an error map
            raise AttestationUnavailable(f"NSM refused the random request: {type(exc).__name__}") from None
        if not isinstance(response, bytes) or len(response) < n:
            raise AttestationUnavailable("NSM returned too few random bytes")
        return response[:n]

    def close(self) -> None:
        self._device.close()


def mix_nsm_entropy(nsm: NitroAttestor, pool: str = "/dev/random", rounds: int = 4) -> None:
    """Stir NSM hardware randomness into the kernel pool at start-up.

    Writing to /dev/random mixes without crediting entropy, so this can only add to what the
    kernel already has; `secrets` (enclave.crypto.rng) then draws from the kernel as everywhere else.
    """
    fd = os.open(pool, os.O_WRONLY)
    try:
        for _ in range(rounds):
            os.write(fd, nsm.random_bytes(NSM_RANDOM_MAX))
    finally:
        os.close(fd)
