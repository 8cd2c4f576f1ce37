"""One operator share as it is printed, typed and checked.

Bytes (50) of a share::

    version    1   SHARE_VERSION
    set id     8   random, names the share set (printed beside each share as 16 hex digits)
    threshold  1   shares of the set needed to unseal
    shares     1   shares in the set
    index      1   this share's evaluation point x (1..shares)
    value      32  f(x) in GF(2^256 - 189), big-endian (enclave/crypto/shamir.py)
    checksum   6   first 6 bytes of SHA-256(CHECKSUM_TAG || the 44 bytes above)

Text: "MPCS-" then the 50 bytes in RFC 4648 base32 (80 characters, no padding) in 16 groups of 5
joined by "-". Decoding ignores case, spaces and dashes. The checksum catches typing mistakes
and damage (a 2^-48 chance to miss one); the set id recognises a share of another set (another
node, or a set replaced by a rekey) before anything is combined; neither is secret. Whether a
well-formed share of the right set is the one issued is decided by its check value
(`share_check`), which the share file records for every index.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import Final

from enclave.crypto import shamir
from enclave.errors import BadInput, InvalidParameters

SHARE_VERSION: Final = 1
SET_ID_LEN: Final = 8
CHECKSUM_LEN: Final = 6
BODY_LEN: Final = 1 + SET_ID_LEN + 3 + shamir.VALUE_LEN
SHARE_LEN: Final = BODY_LEN + CHECKSUM_LEN
PREFIX: Final = "MPCS"
GROUP: Final = 5
MAX_SET_SIZE: Final = 32  # shares per set; more operators than this is not an unseal procedure

_CHECKSUM_TAG: Final = b"mpc-signer/operator-share/v1/checksum"
_CHECK_TAG: Final = b"mpc-signer/operator-share/v1/check"


class ShareRefused(BadInput):
    """A share that counts nothing. `reason` is one of "malformed", "checksum", "version",
    "foreign", "parameters", "wrong", "repeated"; the message is written for the operator and
    never contains share material."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class OperatorShare:
    set_id: bytes
    threshold: int
    shares: int
    index: int
    value: int = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.set_id) != SET_ID_LEN:
            raise InvalidParameters(f"a set id is {SET_ID_LEN} bytes")
        if not 1 <= self.threshold <= self.shares <= MAX_SET_SIZE or not 1 <= self.index <= self.shares:
            raise InvalidParameters("share parameters out of range")
        if not 0 <= self.value < shamir.FIELD_PRIME:
            raise InvalidParameters("share value out of range")

    @property
    def set_hex(self) -> str:
        return self.set_id.hex()

    def describe(self) -> str:
        """Public: which share this is (never its value)."""
        return f"share {self.index} of {self.shares} of set {self.set_hex}"


def _body(share: OperatorShare) -> bytes:
    return (
        bytes([SHARE_VERSION])
        + share.set_id
        + bytes([share.threshold, share.shares, share.index])
        + shamir.to_bytes(share.value)
    )


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(_CHECKSUM_TAG + body).digest()[:CHECKSUM_LEN]


def encode(share: OperatorShare) -> str:
    raw = _body(share)
    text = base64.b32encode(raw + _checksum(raw)).decode("ascii")
    return "-".join([PREFIX, *(text[i : i + GROUP] for i in range(0, len(text), GROUP))])


def decode(text: str) -> OperatorShare:
    """Parse a typed share; ShareRefused says what is wrong with it."""
    compact = "".join(c for c in text if c not in " \t\r\n-").upper()
    encoded_len = SHARE_LEN * 8 // 5
    if compact.startswith(PREFIX) and len(compact) == len(PREFIX) + encoded_len:
        compact = compact[len(PREFIX) :]
    if len(compact) != encoded_len:
        raise ShareRefused(
            "malformed",
            f"not an operator share: expected MPCS- and {encoded_len} characters, got {len(compact)} (a line missing?)",
        )
    try:
        raw = base64.b32decode(compact)
    except (binascii.Error, ValueError):
        raise ShareRefused("malformed", "not an operator share: only letters A-Z, digits 2-7 and dashes") from None
    body, checksum = raw[:BODY_LEN], raw[BODY_LEN:]
    if not hmac.compare_digest(checksum, _checksum(body)):
        raise ShareRefused("checksum", "the share's checksum does not match: a typing mistake or a damaged share")
    if body[0] != SHARE_VERSION:
        raise ShareRefused("version", f"share format version {body[0]} is not supported")
    set_id = body[1 : 1 + SET_ID_LEN]
    threshold, shares, index = body[1 + SET_ID_LEN : 4 + SET_ID_LEN]
    try:
        return OperatorShare(set_id, threshold, shares, index, shamir.from_bytes(body[4 + SET_ID_LEN :]))
    except InvalidParameters:
        raise ShareRefused("malformed", "the share's numbers are out of range") from None


def share_check(set_id: bytes, index: int, value: int) -> bytes:
    """What the share file records for share `index` of a set: a hash of the value. The value
    is a uniform 256-bit field element, so the hash reveals nothing usable about it."""
    return hashlib.sha256(
        struct.pack(">I", len(_CHECK_TAG)) + _CHECK_TAG + set_id + bytes([index]) + shamir.to_bytes(value)
    ).digest()
