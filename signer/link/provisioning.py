"""The host's half of attested channel-key provisioning (`enclave.psk_provisioning = "attested"`).

Before the host hands its pre-shared key to an enclave that has none yet, it checks the enclave's
offer: an attestation document (mode `nitro`) that verifies against the pinned AWS Nitro root and
the measurements in `enclave.expected_pcrs_file` (as `make eif` writes them), is fresh, carries
the host's own handshake nonce, binds the offered key and the channel-key user data. Only then is
the key encrypted to that key (door/provisioning.py). Any failure refuses the
connection (`UNAVAILABLE` to callers, the reason in the log).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509

from mpc.v1 import enclave_pb2 as epb
from signer.client.attestation import AWS_NITRO_ROOT, AttestationError, verify_attestation
from signer.link.client import CHANNEL_KEY_USER_DATA, HandshakeError, OfferVerifier

log = logging.getLogger(__name__)


def load_expected_pcrs(path: Path) -> dict[int, bytes]:
    """`{"PCR0": hex, "PCR1": hex, ...}` (var/pcrs.json from `make eif`; other keys ignored)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of PCRn -> hex")
    pcrs: dict[int, bytes] = {}
    for name, value in data.items():
        if isinstance(name, str) and name.startswith("PCR") and name[3:].isdigit():
            if not isinstance(value, str):
                raise ValueError(f"{path}: {name} must be a hex string")
            pcrs[int(name[3:])] = bytes.fromhex(value)
    if 0 not in pcrs:
        raise ValueError(f"{path}: names no PCR0 (the image measurement)")
    return pcrs


def attested_offer_verifier(
    expected_pcrs: Mapping[int, bytes], root: x509.Certificate = AWS_NITRO_ROOT
) -> OfferVerifier:
    """An `OfferVerifier` for `EnclaveClient(verify_offer=...)`. `root` is for tests with their own CA."""
    pcrs = dict(expected_pcrs)

    def verify(offer: epb.ChannelKeyOffer, nonce: bytes) -> None:
        if offer.attestation_mode != "nitro" or not offer.attestation_document:
            raise HandshakeError(
                f"the enclave asks for the channel key without attestation (mode {offer.attestation_mode!r}); "
                "it is delivered only to an attested enclave"
            )
        try:
            doc = verify_attestation(offer.attestation_document, expected_pcrs=pcrs, nonce=nonce, root=root)
        except AttestationError as exc:
            reason = exc.reason.name
            raise HandshakeError(f"the enclave's attestation was refused ({reason}): key not delivered") from None
        if doc.public_key is None or not hmac.compare_digest(doc.public_key, offer.enclave_public_key):
            raise HandshakeError("the enclave's attestation does not bind the key it offered: key not delivered")
        if doc.user_data is None or not hmac.compare_digest(doc.user_data, CHANNEL_KEY_USER_DATA):
            raise HandshakeError("the enclave's attestation is not a channel-key offer: key not delivered")
        log.warning(
            "delivering the channel key to the attested enclave %s (identity %s)",
            doc.module_id,
            offer.enclave_public_key[:8].hex(),
        )

    return verify
