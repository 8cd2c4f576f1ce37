"""The share file: the data key, wrapped under the key-encryption key of each share set.

The data key (32 bytes) is the local sealer's key (enclave.sealing.LocalSealer): every key share
is sealed under keys derived from it, and it never changes, so a rekey rewrites this file and
nothing else. A share set is Shamir shares (enclave/crypto/shamir.py) of a secret s; the set's
key-encryption key is HKDF-SHA256(ikm = s as 32 bytes, salt = set id, info = WRAP_INFO), and the
file holds, per set, AES-256-GCM(KEK, random 96-bit nonce, data key) with associated data

    lp(WRAP_AD_TAG) || lp(set id) || u8 threshold || u8 shares || lp(data key id) || lp(check_1) ... lp(check_n)

so a set's parameters, its share checks and the data key's fingerprint cannot be changed without
the set's shares no longer opening it. The file (JSON, enclave.sealing's metadata format with
kek_source "shares") has a `current` set and, between a rekey and its verification, a `pending`
one; either unseals.

Durability: every change writes a new file beside the old one (mode 0600, fsync), renames it
over the old one (atomic on POSIX) and fsyncs the directory, so a crash at any point leaves the
old file or the new one, never a mix; a first file is created with link() so an existing one is
never replaced. Stale temporary files of an interrupted write are removed at the next start.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from door.encoding import lp32
from enclave.crypto import shamir
from enclave.crypto.rng import Rng
from enclave.sealing import (
    KEK_ID_LEN,
    KEK_LEN,
    SealerConfigError,
    metadata_json,
    read_metadata,
    write_private_file,
)
from enclave.unseal.shares import SET_ID_LEN, OperatorShare, share_check

KEK_SOURCE: Final = "shares"
WRAP_INFO: Final = b"mpc-signer/unseal/v1/kek"
WRAP_AD_TAG: Final = b"mpc-signer/unseal/v1/wrapped-data-key"
_NONCE_LEN: Final = 12
_TMP_MARK: Final = ".tmp-"


@dataclass(frozen=True)
class ShareSlot:
    """One share set as the file records it (all public: ids, counts, hashes, ciphertext)."""

    set_id: bytes
    threshold: int
    shares: int
    checks: tuple[bytes, ...]  # checks[i] belongs to share index i + 1
    wrapped: bytes = field(repr=False)  # nonce || AES-256-GCM(data key)

    @property
    def set_hex(self) -> str:
        return self.set_id.hex()

    def associated_data(self, data_key_id: bytes) -> bytes:
        out = lp32(WRAP_AD_TAG) + lp32(self.set_id) + bytes([self.threshold, self.shares]) + lp32(data_key_id)
        return out + b"".join(lp32(c) for c in self.checks)

    def check_matches(self, share: OperatorShare) -> bool:
        expected = self.checks[share.index - 1]
        return hmac.compare_digest(expected, share_check(share.set_id, share.index, share.value))


@dataclass(frozen=True)
class ShareFile:
    data_key_id: bytes
    current: ShareSlot
    pending: ShareSlot | None = None


def _kek(secret: int, set_id: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEK_LEN, salt=set_id, info=WRAP_INFO).derive(shamir.to_bytes(secret))


def new_slot(
    data_key: bytes, data_key_id: bytes, threshold: int, shares: int, rng: Rng
) -> tuple[ShareSlot, list[OperatorShare]]:
    """A fresh share set wrapping `data_key`: a new secret, its shares, their checks."""
    set_id = rng.random_bytes(SET_ID_LEN)
    secret = shamir.random_secret(rng)
    values = shamir.split(secret, threshold, shares, rng)
    issued = [OperatorShare(set_id, threshold, shares, x, values[x]) for x in sorted(values)]
    checks = tuple(share_check(set_id, s.index, s.value) for s in issued)
    unwrapped = ShareSlot(set_id, threshold, shares, checks, b"")
    nonce = rng.random_bytes(_NONCE_LEN)
    body = AESGCM(_kek(secret, set_id)).encrypt(nonce, data_key, unwrapped.associated_data(data_key_id))
    return ShareSlot(set_id, threshold, shares, checks, nonce + body), issued


def unwrap(slot: ShareSlot, data_key_id: bytes, secret: int) -> bytes | None:
    """The data key, or None when `secret` (combined from shares) does not open this slot."""
    nonce, body = slot.wrapped[:_NONCE_LEN], slot.wrapped[_NONCE_LEN:]
    try:
        # 32 bytes whenever it authenticates: `_slot` admits only ciphertexts of that length.
        return AESGCM(_kek(secret, slot.set_id)).decrypt(nonce, body, slot.associated_data(data_key_id))
    except InvalidTag:
        return None


# --- the file ---------------------------------------------------------------------------------


def _slot_json(slot: ShareSlot) -> dict[str, object]:
    return {
        "set_id": slot.set_hex,
        "threshold": slot.threshold,
        "shares": slot.shares,
        "checks": [c.hex() for c in slot.checks],
        "wrapped_data_key": slot.wrapped.hex(),
    }


def _slot(doc: object, path: Path, name: str) -> ShareSlot:
    where = f"share file {path}: {name} set"
    if not isinstance(doc, Mapping):
        raise SealerConfigError(f"{where} is malformed")
    try:
        set_id = bytes.fromhex(str(doc["set_id"]))
        threshold, shares = doc["threshold"], doc["shares"]
        checks = tuple(bytes.fromhex(str(c)) for c in doc["checks"])
        wrapped = bytes.fromhex(str(doc["wrapped_data_key"]))
    except (KeyError, TypeError, ValueError):
        raise SealerConfigError(f"{where} is malformed") from None
    if (
        len(set_id) != SET_ID_LEN
        or type(threshold) is not int
        or type(shares) is not int
        or not 1 <= threshold <= shares <= 255
        or len(checks) != shares
        or any(len(c) != 32 for c in checks)
        or len(wrapped) != _NONCE_LEN + KEK_LEN + 16
    ):
        raise SealerConfigError(f"{where} is malformed")
    return ShareSlot(set_id, threshold, shares, checks, wrapped)


def encode(file: ShareFile) -> bytes:
    fields: dict[str, object] = {
        "kek_source": KEK_SOURCE,
        "data_key_id": file.data_key_id.hex(),
        "current": _slot_json(file.current),
    }
    if file.pending is not None:
        fields["pending"] = _slot_json(file.pending)
    return metadata_json(fields)


def read(path: Path) -> ShareFile | None:
    """The share file, or None if there is none yet (SealerConfigError if it is not one)."""
    if not path.exists():
        return None
    meta = read_metadata(path)
    if meta.get("kek_source") != KEK_SOURCE:
        kind = meta.get("kek_source")
        raise SealerConfigError(f"{path} is sealer metadata of another kind ({kind!r}), not a share file")
    try:
        data_key_id = bytes.fromhex(str(meta["data_key_id"]))
    except (KeyError, ValueError):
        raise SealerConfigError(f"share file {path} has a malformed data key id") from None
    if len(data_key_id) != KEK_ID_LEN:
        raise SealerConfigError(f"share file {path} has a malformed data key id")
    current = _slot(meta.get("current"), path, "current")
    pending = _slot(meta["pending"], path, "pending") if "pending" in meta else None
    if pending is not None and pending.set_id == current.set_id:
        raise SealerConfigError(f"share file {path} has two sets with one id")
    return ShareFile(data_key_id, current, pending)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Temporary files an interrupted write left beside `path` (never the file itself)."""
    removed = []
    prefix = f".{path.name}{_TMP_MARK}"
    with contextlib.suppress(FileNotFoundError):
        for entry in path.parent.iterdir():
            if entry.name.startswith(prefix):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def _write_temporary(path: Path, data: bytes, rng: Rng) -> Path:
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{rng.random_bytes(6).hex()}")
    write_private_file(tmp, data)
    return tmp


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp: Path, path: Path) -> None:
    """The switch from the old file to the new one: one rename, then the directory entry made
    durable. A module function so a test's entry point can pause here to kill the process
    between the two states (tests/tee/unseal_fixture.py); nothing in the product replaces it."""
    os.replace(tmp, path)
    _fsync_directory(path.parent)


def replace(path: Path, file: ShareFile, rng: Rng) -> None:
    """Write `file` over the existing share file, atomically."""
    tmp = _write_temporary(path, encode(file), rng)
    try:
        commit_file(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def create(path: Path, file: ShareFile, rng: Rng) -> None:
    """Write the first share file; SealerConfigError if one exists (it is never replaced here)."""
    tmp = _write_temporary(path, encode(file), rng)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise SealerConfigError(f"share file {path} already exists; refusing to replace it") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _fsync_directory(path.parent)
