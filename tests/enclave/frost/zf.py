"""Access to ZcashFoundation frost through the PyPI binding `frost_rs` (utility_ed25519 and
utility_secp256k1; it has no Taproot module).

frost_rs passes every object as base64url text of ZF frost's postcard bytes, wants `bytes`
messages, and reports failures as pyo3 `PanicException`, a BaseException: `call` turns any
failure into `ZfError` so a test can assert on it without catching KeyboardInterrupt & co.

DKG round 2: frost_rs does not hand out ZF's round-2 packages in clear. Its own envelope (in
frost_rs's vendored frost-core, `keys::dkg::part2`/`part3`): key = HKDF-SHA256(salt "FROST_RS",
ikm = encoding of a_0(sender) * phi_0(recipient), no info), AES-256-GCM with a random 12-byte
nonce prefixed, plaintext the JSON string of the share's hex encoding. `seal_for_zf` /
`open_from_zf` speak that envelope for this project's parties in a mixed DKG; it is a test
adapter for frost_rs's transport, not part of this project's protocol (which encrypts its
round-2 shares its own way, see enclave.protocols.frost.dkg).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from frost_rs import utility_ed25519, utility_secp256k1

from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite

ZF_MODULES: dict[str, ModuleType] = {
    FROST_ED25519.short_name: utility_ed25519,
    FROST_SECP256K1.short_name: utility_secp256k1,
}


class ZfError(Exception):
    pass


def module(cs: Ciphersuite) -> ModuleType:
    return ZF_MODULES[cs.short_name]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # pyo3 PanicException derives from BaseException
        raise ZfError(type(exc).__name__) from exc


def _envelope_key(cs: Ciphersuite, my_a0: int, their_phi0: bytes) -> AESGCM:
    shared = cs.group.encode(cs.group.decode_mul(their_phi0, my_a0))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"FROST_RS", info=b"").derive(shared)
    return AESGCM(key)


def seal_for_zf(cs: Ciphersuite, my_a0: int, their_phi0: bytes, share: int) -> str:
    nonce = secrets.token_bytes(12)
    plaintext = json.dumps(cs.group.encode_scalar(share).hex()).encode()
    return b64(nonce + _envelope_key(cs, my_a0, their_phi0).encrypt(nonce, plaintext, None))


def open_from_zf(cs: Ciphersuite, my_a0: int, their_phi0: bytes, package: str) -> int:
    raw = unb64(package)
    plaintext = _envelope_key(cs, my_a0, their_phi0).decrypt(raw[:12], raw[12:], None)
    return cs.group.decode_scalar(bytes.fromhex(json.loads(plaintext)))


__all__ = ["ZfError", "b64", "call", "module", "open_from_zf", "seal_for_zf", "unb64"]
