"""Sealing: authenticated encryption of key shares, presignatures and pre-parameters at rest.

The host stores only what this module produces. Every sealed blob is one self-describing
envelope (all integers big-endian)::

    magic      4   b"MPCS"
    version    1   FORMAT_VERSION
    suite      1   SUITE_AES256GCM_HKDF_SHA256
    kind_len   1   then `kind` (ASCII, e.g. "local", later "kms")
    params_len 2   then `params`: the sealer kind's own header
                   (local: 8-byte KEK id || 16-byte per-blob DEK salt;
                    a KMS sealer puts its encrypted data key here)
    nonce      12  random, never reused with the same DEK
    body       ..  AES-256-GCM ciphertext || 16-byte tag

The AEAD associated data is the whole header (magic through params) followed by the caller's
`Binding` (key id, protocol, party id, purpose, item id), so a blob moved to another key, party,
protocol or purpose, or with any header byte changed, fails authentication. The kind recorded in
the header lets a store hold blobs of several kinds (e.g. during a local -> KMS migration):
`MultiSealer` dispatches on it.

Local sealer keys. A 32-byte key-encryption key (KEK) comes from a key file (`generate_key_file`,
mode 0600) or from a passphrase through scrypt (parameters and salt in the sealer metadata file).
Each blob is encrypted under its own data-encryption key, HKDF-SHA256(KEK, salt=random 16 bytes,
info=label), so the random 96-bit nonce never approaches the birthday bound of one GCM key no
matter how many presignatures are sealed. The metadata file also holds a "key check": a blob
sealing a known constant. Opening a sealer unseals it first, so a wrong passphrase or key file
stops the enclave at start with `WrongSealingKey` instead of failing later on the first share.
A third source, t-of-n operator shares (enclave/unseal/), gives a `LocalSealer` whose KEK is a
data key kept wrapped in a share file until enough operators' shares open it; its blobs are of
kind "local" too, exactly like a key file's.

What is not protected: Python cannot wipe memory, so the KEK and plaintexts live in process
memory until garbage-collected (the enclave boundary is what protects them); the metadata file
is integrity-checked only through the key check (editing it can deny service, not extract keys);
rollback of the store to older blobs is not detected by a durable sealer. Single-use items are
therefore never sealed by one: they use `boot_sealer`, a key that lives in enclave memory for one
boot, and the engine's own used-record (enclave/engine/singleuse.py) refuses a second use.
"""

from __future__ import annotations

import hmac
import json
import os
import stat
import struct
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from door.encoding import lp32
from enclave.crypto.rng import SYSTEM_RNG, Rng
from enclave.errors import EnclaveError

MAGIC: Final = b"MPCS"
FORMAT_VERSION: Final = 1
SUITE_AES256GCM_HKDF_SHA256: Final = 1
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
KEK_LEN: Final = 32
KEK_ID_LEN: Final = 8
DEK_SALT_LEN: Final = 16
LOCAL_KIND: Final = "local"
BOOT_KIND_PREFIX: Final = "boot-"

Purpose = Literal["share", "presignature", "preparams", "key-check"]
PURPOSES: Final[frozenset[str]] = frozenset({"share", "presignature", "preparams", "key-check"})

_BINDING_TAG: Final = b"mpc-signer/sealing/v1/binding"
_DEK_INFO: Final = b"mpc-signer/sealing/v1/dek/aes-256-gcm"
_KEK_ID_INFO: Final = b"mpc-signer/sealing/v1/kek-id"
_KEY_CHECK_PLAINTEXT: Final = b"mpc-signer/sealing/v1/key-check"
_METADATA_FORMAT: Final = "mpc-signer-sealer"
_METADATA_VERSION: Final = 1
_SCRYPT_SALT_LEN: Final = 16


class SealingError(EnclaveError):
    """Base class of sealing failures. Messages never contain key material or plaintext."""


class SealedBlobCorrupt(SealingError):
    """A blob that cannot be unsealed. `reason` names the failing part, one of:
    "header", "version", "suite", "kind", "key" (sealed under another KEK), "authentication"
    (tag check failed: altered bytes or a different binding)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"sealed blob rejected ({reason}): {detail}")


class SealerConfigError(SealingError):
    """The sealer cannot start: missing or malformed key file or metadata, unsafe permissions."""


class WrongSealingKey(SealerConfigError):
    """The key file or passphrase does not match the sealer metadata's key check."""


@dataclass(frozen=True)
class Binding:
    """What a sealed blob belongs to; becomes part of the associated data.

    `item_id` distinguishes several blobs of one purpose under one key (a presignature id, a
    pre-parameter set id); `key_id` may be empty for pre-parameters made before any key exists.
    """

    key_id: str
    protocol: str
    party_id: int
    purpose: Purpose
    item_id: str = ""

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"unknown sealing purpose {self.purpose!r}")
        if self.party_id < 0:
            raise ValueError("party id must be non-negative")

    def encode(self) -> bytes:
        fields = (
            ("key_id", self.key_id),
            ("protocol", self.protocol),
            ("party_id", str(self.party_id)),
            ("purpose", self.purpose),
            ("item_id", self.item_id),
        )
        out = bytearray(lp32(_BINDING_TAG))
        for name, value in fields:
            out += lp32(name.encode("ascii"))
            out += lp32(value.encode("utf-8"))
        return bytes(out)


class Sealer(Protocol):
    """The seam between the enclave's secrets and the host's storage. `kind` is recorded in each
    blob's header and by the host beside the blob."""

    @property
    def kind(self) -> str: ...

    def seal(self, plaintext: bytes, binding: Binding) -> bytes: ...

    def unseal(self, blob: bytes, binding: Binding) -> bytes: ...


@dataclass(frozen=True)
class Envelope:
    """A parsed blob. `header` is the exact byte prefix (magic through params) used as AAD."""

    version: int
    suite: int
    kind: str
    params: bytes
    nonce: bytes
    body: bytes
    header: bytes


def encode_header(kind: str, params: bytes, suite: int = SUITE_AES256GCM_HKDF_SHA256) -> bytes:
    kind_b = kind.encode("ascii")
    if not 0 < len(kind_b) < 256 or not all(0x21 <= c < 0x7F for c in kind_b):
        raise ValueError("sealer kind must be 1..255 printable ASCII characters")
    if len(params) > 0xFFFF:
        raise ValueError("sealer params too long")
    return MAGIC + bytes([FORMAT_VERSION, suite, len(kind_b)]) + kind_b + struct.pack(">H", len(params)) + params


def parse_envelope(blob: bytes) -> Envelope:
    """Split a blob into its parts, checking the structure (not the authenticity)."""
    if len(blob) < len(MAGIC) + 3 or blob[: len(MAGIC)] != MAGIC:
        raise SealedBlobCorrupt("header", "not a sealed blob (bad magic)")
    pos = len(MAGIC)
    version, suite, kind_len = blob[pos], blob[pos + 1], blob[pos + 2]
    if version != FORMAT_VERSION:
        raise SealedBlobCorrupt("version", f"format version {version} is not supported (expected {FORMAT_VERSION})")
    if suite != SUITE_AES256GCM_HKDF_SHA256:
        raise SealedBlobCorrupt("suite", f"cipher suite {suite} is not supported")
    pos += 3
    if kind_len == 0 or len(blob) < pos + kind_len + 2:
        raise SealedBlobCorrupt("header", "truncated header")
    kind_b = blob[pos : pos + kind_len]
    if not all(0x21 <= c < 0x7F for c in kind_b):
        raise SealedBlobCorrupt("kind", "sealer kind is not printable ASCII")
    pos += kind_len
    (params_len,) = struct.unpack(">H", blob[pos : pos + 2])
    pos += 2
    if len(blob) < pos + params_len + NONCE_LEN + TAG_LEN:
        raise SealedBlobCorrupt("header", "truncated blob")
    params = blob[pos : pos + params_len]
    pos += params_len
    header = blob[:pos]
    nonce = blob[pos : pos + NONCE_LEN]
    body = blob[pos + NONCE_LEN :]
    return Envelope(version, suite, kind_b.decode("ascii"), params, nonce, body, header)


def blob_kind(blob: bytes) -> str:
    """The sealer kind recorded in a blob's header."""
    return parse_envelope(blob).kind


def _derive(kek: bytes, salt: bytes | None, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(kek)


def kek_id(kek: bytes) -> bytes:
    """A short public fingerprint of a KEK, so a blob sealed under another key is named as such."""
    return _derive(kek, None, _KEK_ID_INFO, KEK_ID_LEN)


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost. The default (N=2^17, r=8, p=1: 128 MiB, ~0.4 s here) follows current
    guidance for interactive-strength password hashing; N=2^14 is the floor accepted."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if self.n < 2**14 or self.n & (self.n - 1) or self.r < 8 or not 1 <= self.p <= 16 or self.n > 2**22:
            raise SealerConfigError("scrypt parameters out of range (need N a power of two in [2^14, 2^22], r>=8)")


class LocalSealer:
    """AES-256-GCM under per-blob keys derived from a local KEK. Build with `from_key_file` or
    `from_passphrase` so the key check runs; the constructor is for those and for tests."""

    def __init__(self, kek: bytes, rng: Rng = SYSTEM_RNG, *, kind: str = LOCAL_KIND) -> None:
        if len(kek) != KEK_LEN:
            raise SealerConfigError(f"key-encryption key must be {KEK_LEN} bytes")
        self._kek = kek
        self._kek_id = kek_id(kek)
        self._rng = rng
        self._kind = kind

    def __repr__(self) -> str:
        return f"LocalSealer(kind={self._kind!r}, kek_id={self._kek_id.hex()})"

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def key_id(self) -> str:
        """Hex fingerprint of the KEK (public)."""
        return self._kek_id.hex()

    def seal(self, plaintext: bytes, binding: Binding) -> bytes:
        salt = self._rng.random_bytes(DEK_SALT_LEN)
        nonce = self._rng.random_bytes(NONCE_LEN)
        header = encode_header(self._kind, self._kek_id + salt)
        dek = _derive(self._kek, salt, _DEK_INFO)
        body = AESGCM(dek).encrypt(nonce, plaintext, header + binding.encode())
        return header + nonce + body

    def unseal(self, blob: bytes, binding: Binding) -> bytes:
        env = parse_envelope(blob)
        if env.kind != self._kind:
            raise SealedBlobCorrupt("kind", f"blob was sealed by the {env.kind!r} sealer, not {self._kind!r}")
        if len(env.params) != KEK_ID_LEN + DEK_SALT_LEN:
            raise SealedBlobCorrupt("header", "local sealer parameters have the wrong length")
        blob_kek_id, salt = env.params[:KEK_ID_LEN], env.params[KEK_ID_LEN:]
        if not hmac.compare_digest(blob_kek_id, self._kek_id):
            raise SealedBlobCorrupt(
                "key", f"blob was sealed under key {blob_kek_id.hex()}, this sealer holds {self._kek_id.hex()}"
            )
        dek = _derive(self._kek, salt, _DEK_INFO)
        try:
            return AESGCM(dek).decrypt(env.nonce, env.body, env.header + binding.encode())
        except InvalidTag:
            raise SealedBlobCorrupt(
                "authentication", "tag check failed: the blob was altered or belongs to another key/party/purpose"
            ) from None

    # --- construction with key check -------------------------------------------------------

    @classmethod
    def from_key_file(cls, key_path: Path, metadata_path: Path | None = None, rng: Rng = SYSTEM_RNG) -> LocalSealer:
        """Open the sealer whose KEK is the 32 bytes in `key_path` (which must not be readable by
        group or others). The metadata defaults to `<key_path>.meta.json` and must exist."""
        key_path = Path(key_path)
        meta_path = Path(metadata_path) if metadata_path else default_metadata_path(key_path)
        meta = read_metadata(meta_path)
        if meta.get("kek_source") != "key-file":
            raise SealerConfigError(f"sealer metadata {meta_path} is not for a key file")
        sealer = cls(_read_key_file(key_path), rng)
        sealer._check(meta, meta_path)
        return sealer

    @classmethod
    def from_passphrase(cls, metadata_path: Path, passphrase: str | bytes, rng: Rng = SYSTEM_RNG) -> LocalSealer:
        """Open the sealer whose KEK is scrypt(passphrase) with the salt and cost in the metadata
        file written by `init_passphrase`."""
        meta_path = Path(metadata_path)
        meta = read_metadata(meta_path)
        if meta.get("kek_source") != "passphrase":
            raise SealerConfigError(f"sealer metadata {meta_path} is not for a passphrase")
        try:
            sp = meta["scrypt"]
            if not isinstance(sp, dict):
                raise TypeError
            params = ScryptParams(n=int(sp["n"]), r=int(sp["r"]), p=int(sp["p"]))
            salt = bytes.fromhex(sp["salt"])
        except (KeyError, TypeError, ValueError) as e:
            raise SealerConfigError(f"sealer metadata {meta_path} has malformed scrypt parameters") from e
        if len(salt) != _SCRYPT_SALT_LEN:
            raise SealerConfigError(f"sealer metadata {meta_path} has a malformed scrypt salt")
        sealer = cls(_scrypt(passphrase, salt, params), rng)
        sealer._check(meta, meta_path)
        return sealer

    def _check(self, meta: Mapping[str, object], meta_path: Path) -> None:
        check = meta.get("key_check")
        if not isinstance(check, str):
            raise SealerConfigError(f"sealer metadata {meta_path} has no key check")
        try:
            blob = bytes.fromhex(check)
        except ValueError as e:
            raise SealerConfigError(f"sealer metadata {meta_path} has a malformed key check") from e
        try:
            value = self.unseal(blob, _KEY_CHECK_BINDING)
        except SealedBlobCorrupt as e:
            if e.reason in ("key", "authentication"):
                raise WrongSealingKey(
                    f"the sealing key does not match {meta_path} (wrong passphrase or key file); refusing to start"
                ) from None
            raise SealerConfigError(f"sealer metadata {meta_path} has an unreadable key check ({e.reason})") from None
        if not hmac.compare_digest(value, _KEY_CHECK_PLAINTEXT):
            raise WrongSealingKey(f"the key check in {meta_path} does not match; refusing to start")

    def _key_check_blob(self) -> str:
        return self.seal(_KEY_CHECK_PLAINTEXT, _KEY_CHECK_BINDING).hex()


_KEY_CHECK_BINDING: Final = Binding(key_id="", protocol="", party_id=0, purpose="key-check")


def boot_sealer(rng: Rng = SYSTEM_RNG) -> LocalSealer:
    """The sealer of single-use items (presignatures, pre-parameters) for one enclave boot.

    Its KEK is drawn from `rng` when the engine starts and exists only in this process's memory:
    never written, exported or derived from anything durable, so a restart loses it and every
    blob sealed before can no longer be opened. The sealer kind recorded in each blob's header is
    `boot-<KEK fingerprint>` (public), which tells this boot's blobs from an earlier boot's (see
    `is_boot_kind`) without trying to open them. Long-lived key shares never use it.
    """
    kek = rng.random_bytes(KEK_LEN)
    return LocalSealer(kek, rng, kind=BOOT_KIND_PREFIX + kek_id(kek).hex())


def is_boot_kind(kind: str) -> bool:
    return kind.startswith(BOOT_KIND_PREFIX)


class MultiSealer:
    """Seals with `primary`; unseals with whichever configured sealer the blob's header names.
    Used while migrating blobs from one sealer kind to another."""

    def __init__(self, primary: Sealer, others: Iterable[Sealer] = ()) -> None:
        self._primary = primary
        self._by_kind: dict[str, Sealer] = {}
        for s in (primary, *others):
            if s.kind in self._by_kind:
                raise SealerConfigError(f"two sealers of kind {s.kind!r}")
            self._by_kind[s.kind] = s

    def __repr__(self) -> str:
        return f"MultiSealer(primary={self._primary.kind!r}, kinds={sorted(self._by_kind)})"

    @property
    def kind(self) -> str:
        return self._primary.kind

    def seal(self, plaintext: bytes, binding: Binding) -> bytes:
        return self._primary.seal(plaintext, binding)

    def unseal(self, blob: bytes, binding: Binding) -> bytes:
        kind = parse_envelope(blob).kind
        sealer = self._by_kind.get(kind)
        if sealer is None:
            raise SealedBlobCorrupt("kind", f"no sealer of kind {kind!r} is configured")
        return sealer.unseal(blob, binding)


# --- key material and metadata files ---------------------------------------------------------


def default_metadata_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".meta.json")


def generate_key_file(key_path: Path, metadata_path: Path | None = None, rng: Rng = SYSTEM_RNG) -> LocalSealer:
    """Create a new random KEK file (mode 0600, never overwriting) and its metadata."""
    key_path = Path(key_path)
    meta_path = Path(metadata_path) if metadata_path else default_metadata_path(key_path)
    if meta_path.exists():
        raise SealerConfigError(f"sealer metadata {meta_path} already exists; refusing to overwrite")
    kek = rng.random_bytes(KEK_LEN)
    _write_exclusive(key_path, kek)
    sealer = LocalSealer(kek, rng)
    _write_exclusive(meta_path, metadata_json({"kek_source": "key-file", "key_check": sealer._key_check_blob()}))
    return sealer


def init_key_file(key_path: Path, metadata_path: Path | None = None, rng: Rng = SYSTEM_RNG) -> LocalSealer:
    """Write the metadata (key check) for an existing key file provisioned by other means."""
    key_path = Path(key_path)
    meta_path = Path(metadata_path) if metadata_path else default_metadata_path(key_path)
    sealer = LocalSealer(_read_key_file(key_path), rng)
    _write_exclusive(meta_path, metadata_json({"kek_source": "key-file", "key_check": sealer._key_check_blob()}))
    return sealer


def init_passphrase(
    metadata_path: Path, passphrase: str | bytes, params: ScryptParams | None = None, rng: Rng = SYSTEM_RNG
) -> LocalSealer:
    """Create the metadata of a passphrase sealer: a fresh scrypt salt, the cost, the key check."""
    params = params or ScryptParams()
    salt = rng.random_bytes(_SCRYPT_SALT_LEN)
    sealer = LocalSealer(_scrypt(passphrase, salt, params), rng)
    meta = {
        "kek_source": "passphrase",
        "scrypt": {"n": params.n, "r": params.r, "p": params.p, "salt": salt.hex()},
        "key_check": sealer._key_check_blob(),
    }
    _write_exclusive(Path(metadata_path), metadata_json(meta))
    return sealer


def _scrypt(passphrase: str | bytes, salt: bytes, params: ScryptParams) -> bytes:
    if isinstance(passphrase, str):
        # NFC so the same passphrase typed on different systems gives the same key
        passphrase = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    if not passphrase:
        raise SealerConfigError("empty passphrase")
    return Scrypt(salt=salt, length=KEK_LEN, n=params.n, r=params.r, p=params.p).derive(passphrase)


def _read_key_file(key_path: Path) -> bytes:
    try:
        fd = os.open(key_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SealerConfigError(f"sealing key file {key_path} does not exist") from None
    except OSError as e:
        raise SealerConfigError(f"cannot open sealing key file {key_path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SealerConfigError(f"sealing key file {key_path} is not a regular file")
        if st.st_mode & 0o077:
            raise SealerConfigError(
                f"sealing key file {key_path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o});"
                " chmod 600 it"
            )
        data = os.read(fd, KEK_LEN + 1)
    finally:
        os.close(fd)
    if len(data) != KEK_LEN:
        raise SealerConfigError(f"sealing key file {key_path} must hold exactly {KEK_LEN} bytes")
    return data


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 and flush it to disk; FileExistsError if it exists (never
    replaces a file, never follows a symlink). The one way this package writes a secret file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # umask cannot widen it, but a restrictive one must not be relied on either
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_exclusive(path: Path, data: bytes) -> None:
    try:
        write_private_file(path, data)
    except FileExistsError:
        raise SealerConfigError(f"{path} already exists; refusing to overwrite") from None


def metadata_json(fields: Mapping[str, object]) -> bytes:
    """A sealer metadata document (format and version first); the kind's fields beside them."""
    doc = {"format": _METADATA_FORMAT, "version": _METADATA_VERSION, **fields}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")


def read_metadata(meta_path: Path) -> dict[str, object]:
    """A sealer metadata document of any kind (`kek_source` says which); SealerConfigError if it
    is missing or not one."""
    try:
        raw = meta_path.read_bytes()
    except FileNotFoundError:
        raise SealerConfigError(
            f"sealer metadata {meta_path} does not exist; create it with generate_key_file / init_key_file /"
            " init_passphrase"
        ) from None
    except OSError as e:
        raise SealerConfigError(f"cannot read sealer metadata {meta_path}: {e.strerror}") from None
    try:
        meta = json.loads(raw)
    except ValueError:
        raise SealerConfigError(f"sealer metadata {meta_path} is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != _METADATA_FORMAT:
        raise SealerConfigError(f"{meta_path} is not sealer metadata")
    if meta.get("version") != _METADATA_VERSION:
        raise SealerConfigError(f"sealer metadata {meta_path} has unsupported version {meta.get('version')!r}")
    return meta


__all__ = [
    "BOOT_KIND_PREFIX",
    "FORMAT_VERSION",
    "LOCAL_KIND",
    "MAGIC",
    "SUITE_AES256GCM_HKDF_SHA256",
    "Binding",
    "Envelope",
    "LocalSealer",
    "MultiSealer",
    "Purpose",
    "ScryptParams",
    "SealedBlobCorrupt",
    "Sealer",
    "SealerConfigError",
    "SealingError",
    "WrongSealingKey",
    "blob_kind",
    "boot_sealer",
    "default_metadata_path",
    "encode_header",
    "generate_key_file",
    "init_key_file",
    "init_passphrase",
    "is_boot_kind",
    "kek_id",
    "metadata_json",
    "parse_envelope",
    "read_metadata",
]
