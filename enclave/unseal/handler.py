"""UnsealRequest frames into `Unsealer` calls.

Shares arrive HPKE-encrypted to the enclave's identity key (InfoResponse.enclave_public_key, a
new key every start), with the use ("unseal", "rekey", "verify") and, for a rekey, the key the new
shares go to, bound in the HPKE info (enclave/crypto/hpke.py): a ciphertext made for one use or one
recipient does not open as another, and one from an earlier boot does not open at all. New shares
leave encrypted to the requester's recipient key, one ciphertext per share. Nothing here logs a
share or its plaintext; what is logged (set id, index, counts) is public.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from enclave.crypto import hpke
from enclave.errors import BadInput
from enclave.tee.identity import EnclaveIdentity
from enclave.unseal import shares as share_codec
from enclave.unseal.shares import OperatorShare, ShareRefused
from enclave.unseal.unsealer import Unsealer
from mpc.v1 import enclave_pb2 as pb

MAX_SHARES_PER_REQUEST: Final = share_codec.MAX_SET_SIZE
MAX_CIPHERTEXT: Final = 1024


class UnsealHandler:
    """What `enclave.service.EnclaveService` calls for `unseal` requests, and asks `sealed`."""

    def __init__(self, unsealer: Unsealer, identity: EnclaveIdentity) -> None:
        self._unsealer = unsealer
        self._identity = identity

    @property
    def sealed(self) -> bool:
        return self._unsealer.sealed

    def sealed_error(self) -> Exception:
        return self._unsealer.sealed_error()

    async def handle(self, request: pb.UnsealRequest) -> pb.UnsealStatus:
        op = request.WhichOneof("op")
        u = self._unsealer
        if op is None or op == "status":
            return u.status()
        if op == "init":
            recipient = hpke.load_public_key(request.init.recipient_public_key, "recipient_public_key")
            issued = await u.init(request.init.shares, request.init.threshold)
            first = issued[0]
            message = f"set {first.set_hex} created: {first.threshold} of {first.shares}; the node stays sealed"
            return u.status(message, _encrypted(issued, recipient))
        if op == "share":
            share = self._open_one(request.share.encrypted_share, "unseal")
            return u.status(await u.enter(share))
        if op == "rekey":
            r = request.rekey
            recipient_bytes = bytes(r.recipient_public_key)
            recipient = hpke.load_public_key(recipient_bytes, "recipient_public_key")
            current = self._open_all(r.encrypted_shares, "rekey", recipient_bytes)
            issued = await u.rekey(current, r.shares, r.threshold)
            first = issued[0]
            message = (
                f"set {first.set_hex} ({first.threshold} of {first.shares}) issued and pending: both sets unseal "
                "until it is verified (mpc-signer rekey --verify)"
            )
            return u.status(message, _encrypted(issued, recipient))
        if op == "rekey_verify":
            new = self._open_all(request.rekey_verify.encrypted_shares, "verify")
            return u.status(await u.verify(new))
        raise BadInput("unknown unseal operation")

    def _open_one(self, ciphertext: bytes, use: str, recipient: bytes = b"") -> OperatorShare:
        if len(ciphertext) > MAX_CIPHERTEXT:
            raise BadInput("encrypted share is too long")
        context = hpke.operator_share_info(use, recipient)
        plaintext = hpke.open_sealed(self._identity.private_key, bytes(ciphertext), context, "the encrypted share")
        try:
            text = plaintext.decode("ascii")
        except UnicodeDecodeError:
            raise ShareRefused("malformed", "not an operator share: it is not text") from None
        return share_codec.decode(text)

    def _open_all(self, ciphertexts: Sequence[bytes], use: str, recipient: bytes = b"") -> list[OperatorShare]:
        if not 0 < len(ciphertexts) <= MAX_SHARES_PER_REQUEST:
            raise BadInput(f"give 1..{MAX_SHARES_PER_REQUEST} shares")
        opened = []
        for i, ciphertext in enumerate(ciphertexts, 1):
            try:
                opened.append(self._open_one(ciphertext, use, recipient))
            except ShareRefused as exc:
                raise ShareRefused(exc.reason, f"share {i} of the {len(ciphertexts)} given: {exc}") from None
        return opened


def _encrypted(issued: Sequence[OperatorShare], recipient: ec.EllipticCurvePublicKey) -> pb.NewShares:
    first = issued[0]
    return pb.NewShares(
        set_id=first.set_hex,
        threshold=first.threshold,
        encrypted_shares=[
            hpke.seal(recipient, share_codec.encode(s).encode("ascii"), hpke.new_share_info(s.set_hex, s.index))
            for s in issued
        ],
    )
