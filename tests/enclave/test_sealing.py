"""Sealing: envelope format, tamper detection, AAD binding, key check at start, key file rules."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from enclave.sealing import (
    Binding,
    LocalSealer,
    MultiSealer,
    ScryptParams,
    SealedBlobCorrupt,
    SealerConfigError,
    WrongSealingKey,
    blob_kind,
    default_metadata_path,
    encode_header,
    generate_key_file,
    init_key_file,
    init_passphrase,
    parse_envelope,
)

KEY_ID = "ab" * 32
BINDING = Binding(key_id=KEY_ID, protocol="gg20-secp256k1", party_id=2, purpose="share")
FAST_SCRYPT = ScryptParams(n=2**14, r=8, p=1)  # the accepted floor: a real cost, just the cheapest allowed


class CountingRng:
    """Deterministic bytes (SHA-256 in counter mode) so blobs are reproducible in tests."""

    def __init__(self, seed: bytes = b"seed") -> None:
        self._seed = seed
        self._n = 0

    def random_bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self._seed + self._n.to_bytes(8, "big")).digest()
            self._n += 1
        return out[:n]


@pytest.fixture
def sealer() -> LocalSealer:
    return LocalSealer(bytes(range(32)))


def test_round_trip_every_purpose(sealer: LocalSealer) -> None:
    for purpose in ("share", "presignature", "preparams"):
        b = Binding(key_id=KEY_ID, protocol="frost-ed25519", party_id=1, purpose=purpose, item_id="p1")  # type: ignore[arg-type]
        for pt in (b"", b"x", os.urandom(1000)):
            blob = sealer.seal(pt, b)
            assert len(pt) < 16 or pt[:16] not in blob  # a short plaintext may occur by chance
            assert sealer.unseal(blob, b) == pt
            assert blob_kind(blob) == "local"


def test_nonce_and_dek_salt_are_fresh(sealer: LocalSealer) -> None:
    a, b = sealer.seal(b"same", BINDING), sealer.seal(b"same", BINDING)
    ea, eb = parse_envelope(a), parse_envelope(b)
    assert ea.nonce != eb.nonce and ea.params != eb.params and a != b


def test_format_matches_documentation_with_independent_decrypt() -> None:
    """Decrypt with cryptography's primitives straight from the documented layout."""
    kek = bytes(range(32, 64))
    blob = LocalSealer(kek, CountingRng()).seal(b"secret share", BINDING)
    assert blob[:4] == b"MPCS" and blob[4] == 1 and blob[5] == 1
    kind_len = blob[6]
    assert blob[7 : 7 + kind_len] == b"local"
    pos = 7 + kind_len
    (plen,) = struct.unpack(">H", blob[pos : pos + 2])
    params = blob[pos + 2 : pos + 2 + plen]
    header_end = pos + 2 + plen
    kek_id = HKDF(hashes.SHA256(), 8, None, b"mpc-signer/sealing/v1/kek-id").derive(kek)
    assert params[:8] == kek_id
    dek = HKDF(hashes.SHA256(), 32, params[8:], b"mpc-signer/sealing/v1/dek/aes-256-gcm").derive(kek)
    aad = blob[:header_end] + BINDING.encode()
    nonce = blob[header_end : header_end + 12]
    assert AESGCM(dek).decrypt(nonce, blob[header_end + 12 :], aad) == b"secret share"


def test_deterministic_with_injected_rng() -> None:
    kek = b"\x07" * 32
    assert LocalSealer(kek, CountingRng()).seal(b"m", BINDING) == LocalSealer(kek, CountingRng()).seal(b"m", BINDING)


def test_every_byte_flip_is_rejected(sealer: LocalSealer) -> None:
    blob = sealer.seal(b"a key share of some length", BINDING)
    reasons = set()
    for i in range(len(blob)):
        for mask in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= mask
            with pytest.raises(SealedBlobCorrupt) as ei:
                sealer.unseal(bytes(bad), BINDING)
            reasons.add(ei.value.reason)
            assert "a key share" not in str(ei.value)
    assert {"header", "version", "suite", "key", "authentication"} <= reasons


def test_truncation_and_extension_rejected(sealer: LocalSealer) -> None:
    blob = sealer.seal(b"share", BINDING)
    for cut in range(len(blob)):
        with pytest.raises(SealedBlobCorrupt):
            sealer.unseal(blob[:cut], BINDING)
    with pytest.raises(SealedBlobCorrupt) as ei:
        sealer.unseal(blob + b"\x00", BINDING)
    assert ei.value.reason == "authentication"


def test_header_fields_are_authenticated(sealer: LocalSealer) -> None:
    """A header re-encoded with different (but well-formed) params fails the tag, not parsing."""
    blob = sealer.seal(b"share", BINDING)
    env = parse_envelope(blob)
    other_salt = env.params[:8] + bytes(16)
    forged = encode_header("local", other_salt) + env.nonce + env.body
    with pytest.raises(SealedBlobCorrupt) as ei:
        sealer.unseal(forged, BINDING)
    assert ei.value.reason == "authentication"


@pytest.mark.parametrize(
    "other",
    [
        Binding(key_id="cd" * 32, protocol="gg20-secp256k1", party_id=2, purpose="share"),
        Binding(key_id=KEY_ID, protocol="frost-ed25519", party_id=2, purpose="share"),
        Binding(key_id=KEY_ID, protocol="gg20-secp256k1", party_id=3, purpose="share"),
        Binding(key_id=KEY_ID, protocol="gg20-secp256k1", party_id=2, purpose="presignature"),
        Binding(key_id=KEY_ID, protocol="gg20-secp256k1", party_id=2, purpose="share", item_id="x"),
    ],
)
def test_wrong_binding_rejected(sealer: LocalSealer, other: Binding) -> None:
    blob = sealer.seal(b"share", BINDING)
    with pytest.raises(SealedBlobCorrupt) as ei:
        sealer.unseal(blob, other)
    assert ei.value.reason == "authentication"


def test_binding_encoding_is_unambiguous() -> None:
    a = Binding(key_id="ab", protocol="c", party_id=1, purpose="share")
    b = Binding(key_id="a", protocol="bc", party_id=1, purpose="share")
    assert a.encode() != b.encode()
    with pytest.raises(ValueError):
        Binding(key_id="", protocol="", party_id=0, purpose="bogus")  # type: ignore[arg-type]


def test_other_kek_named_as_key_mismatch(sealer: LocalSealer) -> None:
    blob = sealer.seal(b"share", BINDING)
    with pytest.raises(SealedBlobCorrupt) as ei:
        LocalSealer(b"\x01" * 32).unseal(blob, BINDING)
    assert ei.value.reason == "key"


def test_repr_has_no_key_material() -> None:
    kek = bytes(range(100, 132))
    s = LocalSealer(kek)
    assert kek.hex() not in repr(s) and s.key_id in repr(s)


class OtherKindSealer:
    """A second sealer kind on the shared envelope, standing in for the later KMS sealer."""

    kind = "test-kms"

    def __init__(self) -> None:
        self._key = AESGCM.generate_key(256)

    def seal(self, plaintext: bytes, binding: Binding) -> bytes:
        header = encode_header(self.kind, b"data-key-ref")
        nonce = os.urandom(12)
        return header + nonce + AESGCM(self._key).encrypt(nonce, plaintext, header + binding.encode())

    def unseal(self, blob: bytes, binding: Binding) -> bytes:
        env = parse_envelope(blob)
        return AESGCM(self._key).decrypt(env.nonce, env.body, env.header + binding.encode())


def test_multisealer_dispatches_on_header_kind(sealer: LocalSealer) -> None:
    kms = OtherKindSealer()
    old = sealer.seal(b"old share", BINDING)
    multi = MultiSealer(kms, [sealer])
    new = multi.seal(b"new share", BINDING)
    assert blob_kind(new) == "test-kms" and multi.kind == "test-kms"
    assert multi.unseal(old, BINDING) == b"old share"
    assert multi.unseal(new, BINDING) == b"new share"
    with pytest.raises(SealedBlobCorrupt) as ei:
        MultiSealer(sealer).unseal(new, BINDING)
    assert ei.value.reason == "kind"
    with pytest.raises(SealedBlobCorrupt) as ei:
        sealer.unseal(new, BINDING)
    assert ei.value.reason == "kind"
    with pytest.raises(SealerConfigError):
        MultiSealer(sealer, [LocalSealer(b"\x02" * 32)])


# --- key files, passphrases and the key check -----------------------------------------------


def test_generate_key_file_mode_and_reopen(tmp_path: Path) -> None:
    key = tmp_path / "sealing.key"
    s1 = generate_key_file(key)
    st = key.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 32
    assert stat.S_IMODE(default_metadata_path(key).stat().st_mode) == 0o600
    blob = s1.seal(b"share", BINDING)
    s2 = LocalSealer.from_key_file(key)
    assert s2.unseal(blob, BINDING) == b"share" and s2.key_id == s1.key_id
    with pytest.raises(SealerConfigError, match="refusing to overwrite"):
        generate_key_file(key)
    assert LocalSealer.from_key_file(key).key_id == s1.key_id  # untouched by the refused call


def test_generate_key_file_ignores_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_key_file(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_file_readable_by_others_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "sealing.key"
    generate_key_file(key)
    key.chmod(mode)
    with pytest.raises(SealerConfigError, match="group or others"):
        LocalSealer.from_key_file(key)


def test_key_file_wrong_size_or_missing(tmp_path: Path) -> None:
    key = tmp_path / "k"
    with pytest.raises(SealerConfigError, match="does not exist"):
        LocalSealer.from_key_file(key)
    generate_key_file(key)
    key.chmod(0o600)
    key.write_bytes(b"\x00" * 31)
    with pytest.raises(SealerConfigError, match="exactly 32"):
        LocalSealer.from_key_file(key)


def test_wrong_key_file_refused_at_start(tmp_path: Path) -> None:
    key = tmp_path / "sealing.key"
    generate_key_file(key)
    key.chmod(0o600)
    key.write_bytes(os.urandom(32))  # a different key beside the original metadata
    with pytest.raises(WrongSealingKey, match="wrong passphrase or key file"):
        LocalSealer.from_key_file(key)


def test_missing_metadata_refused(tmp_path: Path) -> None:
    key = tmp_path / "sealing.key"
    generate_key_file(key)
    default_metadata_path(key).unlink()
    with pytest.raises(SealerConfigError, match="does not exist"):
        LocalSealer.from_key_file(key)
    s = init_key_file(key)  # an externally provisioned key gets its metadata explicitly
    assert LocalSealer.from_key_file(key).key_id == s.key_id


def test_passphrase_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    meta = tmp_path / "sealer.json"
    s1 = init_passphrase(meta, "correct horse battery staple", FAST_SCRYPT)
    blob = s1.seal(b"share", BINDING)
    doc = json.loads(meta.read_text())
    assert doc["scrypt"]["n"] == 2**14 and len(bytes.fromhex(doc["scrypt"]["salt"])) == 16
    assert "correct horse" not in meta.read_text()
    s2 = LocalSealer.from_passphrase(meta, "correct horse battery staple")
    assert s2.unseal(blob, BINDING) == b"share"
    with pytest.raises(WrongSealingKey) as ei:
        LocalSealer.from_passphrase(meta, "correct horse battery stapler")
    assert "stapl" not in str(ei.value)
    with pytest.raises(SealerConfigError, match="refusing to overwrite"):
        init_passphrase(meta, "other", FAST_SCRYPT)


def test_passphrase_is_unicode_normalized(tmp_path: Path) -> None:
    meta = tmp_path / "sealer.json"
    init_passphrase(meta, "caf\u00e9", FAST_SCRYPT)  # precomposed
    LocalSealer.from_passphrase(meta, "cafe\u0301")  # decomposed: same passphrase


def test_tampered_scrypt_parameters(tmp_path: Path) -> None:
    meta = tmp_path / "sealer.json"
    init_passphrase(meta, "pw", FAST_SCRYPT)
    doc = json.loads(meta.read_text())
    doc["scrypt"]["n"] = 2**15
    meta.write_text(json.dumps(doc))
    with pytest.raises(WrongSealingKey):
        LocalSealer.from_passphrase(meta, "pw")
    doc["scrypt"]["n"] = 2**10  # below the floor: refused before any derivation
    meta.write_text(json.dumps(doc))
    with pytest.raises(SealerConfigError, match="out of range"):
        LocalSealer.from_passphrase(meta, "pw")


def test_metadata_kind_mismatch(tmp_path: Path) -> None:
    meta = tmp_path / "sealer.json"
    init_passphrase(meta, "pw", FAST_SCRYPT)
    key = tmp_path / "k"
    generate_key_file(key)
    with pytest.raises(SealerConfigError, match="not for a key file"):
        LocalSealer.from_key_file(key, meta)
    with pytest.raises(SealerConfigError, match="not for a passphrase"):
        LocalSealer.from_passphrase(default_metadata_path(key), "pw")
