"""The enclave's half of attested channel-key provisioning (`--psk-provisioning attested`).

Offers the enclave's identity key in an attestation document bound to the host's handshake nonce,
and opens the key the host encrypted to it (door/provisioning.py has the exchange and
its residual risk). The identity key is the one `Info` reports, so a caller that pinned it after
Ping knows which process holds the channel.
"""

from __future__ import annotations

from door import provisioning
from enclave.tee.attestation import Attestor
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb


class AttestedKeyReceiver:
    def __init__(self, identity: EnclaveIdentity, attestor: Attestor) -> None:
        self._identity = identity
        self._attestor = attestor

    def offer(self, host_nonce: bytes) -> pb.ChannelKeyOffer:
        attestation = self._attestor.attest(
            public_key=self._identity.public_key, user_data=provisioning.USER_DATA, nonce=host_nonce
        )
        return pb.ChannelKeyOffer(
            attestation_mode=attestation.mode,
            attestation_document=attestation.document,
            enclave_public_key=self._identity.public_key,
        )

    def unwrap(self, delivery: pb.ChannelKeyDelivery, host_nonce: bytes) -> bytes:
        return provisioning.unwrap_psk(self._identity.private_key, delivery, host_nonce)
