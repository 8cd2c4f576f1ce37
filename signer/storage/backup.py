"""Backup files: every key and every available presignature, still sealed, with an integrity check.

Format (UTF-8 text, exactly three lines, each ending in "\\n")::

    {"created_at":"...","format":"mpc-signer-backup","integrity":"sha256"|"sha256+hmac-sha256","version":2}
    {"keys":[...],"presignatures":[...]}                      (canonical JSON: sorted keys, no spaces)
    {"hmac_sha256":"<hex>","sha256":"<hex>"}                  (hmac_sha256 only when keyed)

`sha256` is SHA-256 over the exact bytes of lines 1 and 2 (newlines included); `hmac_sha256` is
HMAC-SHA256 under an operator-held key over a domain tag followed by the same bytes. Binary fields
are standard base64.

What the check protects, and what it does not:

- SHA-256 alone detects accidental damage: truncation, bit rot, a partial copy, an edited line.
  It is not a defence against someone who can write the file, since they can recompute it.
- With an HMAC key (kept apart from the backup), any change by someone without the key is
  detected, including to the unsealed metadata (public keys, party ids, thresholds, key ids),
  and dropped or added records. An importer given a key refuses a file without an HMAC (no
  downgrade); a file with an HMAC cannot be imported without its key.
- Key shares and presignatures are sealed (AEAD bound to key id, protocol, party and purpose)
  before they ever reach the host, so their confidentiality and integrity never depend on this
  file: a swapped or altered blob fails to unseal in the enclave whatever this check says.
- Nothing here stops replay of an older, genuine backup, and the metadata is not encrypted.

Retired keys (README "Keys: lookup and retirement"): a retired key's record is backed up without
a share. An import never brings a retired share back silently: if the store records a key as
RETIRED and the backup holds its share, the import fails (WouldRevive) naming every such key and
writes nothing, unless the operator names the key (`revive`, `--revive KEY_ID`); an import never
retires a key either. What this cannot see: a backup restored into a store that has lost the
record of the retirement (a new or rolled-back database) brings the share back as ACTIVE.

Import rules (chosen to never lose or silently replace key material):

- The whole file is verified before anything is written; then everything is written in one
  transaction, or nothing is.
- A key already in the store with identical content is skipped and reported; one with different
  content aborts the import (KeyExists naming the ids) — there is no override: remove the key by
  hand if you really mean to replace it.
- Presignatures are NOT restored unless asked for (`restore_presignatures=True`). A presignature
  used twice leaks the key share, and a backup cannot know which of its presignatures the source
  consumed after the export. Restore them only when the source store will never sign again (the
  pool refills itself otherwise). A presignature id already in the store, consumed or not, is
  never revived. The enclave refuses a second use in any case, and every presignature sealed
  before its last restart (enclave/engine/singleuse.py): a restored one at worst fails to sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from signer.storage.base import Store
from signer.storage.errors import BackupCorrupt, InvalidRecord, StorageError
from signer.storage.records import (
    AuditRecord,
    ImportReport,
    KeyRecord,
    Result,
    Snapshot,
    StoredPresignature,
    now_utc,
    utc,
)

FORMAT_NAME = "mpc-signer-backup"
# Version 2 adds each key's lifecycle (state, retired_at, predecessor_key_id) and party names;
# version 1 files are still read (their keys are ACTIVE, with no names).
FORMAT_VERSION = 2
READABLE_VERSIONS = frozenset({1, 2})
_HMAC_TAG = b"mpc-signer-backup/v1/hmac\x00"
_KEY_FIELDS_V1 = frozenset(
    {
        "key_id",
        "protocol",
        "party_id",
        "threshold",
        "party_ids",
        "public_key",
        "chain_code",
        "sealer_kind",
        "sealed_share",
        "created_at",
    }
)
_KEY_FIELDS_V2 = _KEY_FIELDS_V1 | {"party_names", "self_name", "predecessor_key_id", "state", "retired_at"}
_PRESIG_FIELDS = frozenset({"presig_id", "key_id", "signer_set", "sealer_kind", "sealed", "created_at"})
MIN_HMAC_KEY_LEN = 16


@dataclass(frozen=True)
class ExportReport:
    path: Path
    keys: int
    presignatures: int
    sha256: str
    authenticated: bool


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: Any, name: str) -> bytes:
    if not isinstance(s, str):
        raise BackupCorrupt(f"{name} is not base64 text")
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise BackupCorrupt(f"{name} is not valid base64") from None


def _hmac(key: bytes, data: bytes) -> str:
    return hmac.new(key, _HMAC_TAG + data, hashlib.sha256).hexdigest()


def _check_hmac_key(key: bytes | None) -> None:
    if key is not None and len(key) < MIN_HMAC_KEY_LEN:
        raise ValueError(f"the backup HMAC key must be at least {MIN_HMAC_KEY_LEN} bytes")


def encode_backup(snapshot: Snapshot, *, created_at: datetime, hmac_key: bytes | None = None) -> bytes:
    _check_hmac_key(hmac_key)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created_at": utc(created_at).isoformat(),
        "integrity": "sha256+hmac-sha256" if hmac_key else "sha256",
    }
    body = {
        "keys": [
            {
                "key_id": k.key_id,
                "protocol": k.protocol,
                "party_id": k.party_id,
                "threshold": k.threshold,
                "party_ids": list(k.party_ids),
                "public_key": _b64(k.public_key),
                "chain_code": _b64(k.chain_code),
                "sealer_kind": k.sealer_kind,
                "sealed_share": _b64(k.sealed_share),
                "created_at": k.created_at.isoformat() if k.created_at else None,
                "party_names": list(k.party_names),
                "self_name": k.self_name,
                "predecessor_key_id": k.predecessor_key_id,
                "state": k.state,
                "retired_at": k.retired_at.isoformat() if k.retired_at else None,
            }
            for k in snapshot.keys
        ],
        "presignatures": [
            {
                "presig_id": p.presig_id,
                "key_id": p.key_id,
                "signer_set": list(p.signer_set),
                "sealer_kind": p.sealer_kind,
                "sealed": _b64(p.sealed),
                "created_at": p.created_at.isoformat() if p.created_at else None,
            }
            for p in snapshot.presignatures
            if p.state == "available"
        ],
    }
    signed = _canonical(header) + b"\n" + _canonical(body) + b"\n"
    trailer: dict[str, str] = {"sha256": hashlib.sha256(signed).hexdigest()}
    if hmac_key:
        trailer["hmac_sha256"] = _hmac(hmac_key, signed)
    return signed + _canonical(trailer) + b"\n"


def _strict_json(line: bytes, what: str) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) != len(pairs):
            raise BackupCorrupt(f"{what} has duplicate fields")
        return d

    def no_constants(name: str) -> Any:
        raise BackupCorrupt(f"{what} contains {name}")

    try:
        obj = json.loads(line.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError):
        raise BackupCorrupt(f"{what} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise BackupCorrupt(f"{what} is not a JSON object")
    return obj


def _time(v: Any, name: str) -> datetime | None:
    if v is None:
        return None
    try:
        return utc(datetime.fromisoformat(v))
    except (TypeError, ValueError, InvalidRecord):
        raise BackupCorrupt(f"{name} is not a timestamp with a time zone") from None


def decode_backup(data: bytes, *, hmac_key: bytes | None = None) -> Snapshot:
    """Verify and parse a backup. Raises BackupCorrupt, naming what failed, on any problem."""
    _check_hmac_key(hmac_key)
    lines = data.split(b"\n")
    if len(lines) != 4 or lines[3] != b"":
        raise BackupCorrupt("not a backup file (expected three newline-terminated lines)")
    header = _strict_json(lines[0], "header")
    if header.get("format") != FORMAT_NAME:
        raise BackupCorrupt("not an mpc-signer backup (format name)")
    version = header.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise BackupCorrupt(f"backup format version {version!r} is not supported")
    if set(header) != {"format", "version", "created_at", "integrity"}:
        raise BackupCorrupt("unexpected header fields")
    _verify_integrity(
        header, lines[0] + b"\n" + lines[1] + b"\n", _strict_json(lines[2], "integrity trailer"), hmac_key
    )
    _time(header.get("created_at"), "header created_at")
    return _decode_body(lines[1], version)


def _verify_integrity(header: dict[str, Any], signed: bytes, trailer: dict[str, Any], hmac_key: bytes | None) -> None:
    """The trailer's SHA-256, then its HMAC: present exactly when the header says so and a key is given."""
    digest = trailer.get("sha256")
    if not isinstance(digest, str) or not hmac.compare_digest(digest, hashlib.sha256(signed).hexdigest()):
        raise BackupCorrupt("SHA-256 mismatch: the file is damaged or was altered")
    keyed = header["integrity"] == "sha256+hmac-sha256"
    if header["integrity"] not in ("sha256", "sha256+hmac-sha256") or set(trailer) != (
        {"sha256", "hmac_sha256"} if keyed else {"sha256"}
    ):
        raise BackupCorrupt("integrity fields do not match the header")
    if keyed and hmac_key is None:
        raise BackupCorrupt("this backup is authenticated with an HMAC key; supply that key to import it")
    if not keyed and hmac_key is not None:
        raise BackupCorrupt("an HMAC key was given but the backup carries no HMAC (refusing an unauthenticated file)")
    if hmac_key is not None:
        mac = trailer["hmac_sha256"]
        if not isinstance(mac, str) or not hmac.compare_digest(mac, _hmac(hmac_key, signed)):
            raise BackupCorrupt("HMAC mismatch: wrong key, or the file was altered")


def _decode_body(line: bytes, version: int) -> Snapshot:
    body = _strict_json(line, "body")
    if _canonical(body) != line:
        raise BackupCorrupt("body is not in canonical form")
    if set(body) != {"keys", "presignatures"} or not all(isinstance(body[f], list) for f in body):
        raise BackupCorrupt("body must hold exactly the keys and presignatures lists")
    try:
        keys = tuple(_decode_key(i, k, version) for i, k in enumerate(body["keys"]))
        presigs = tuple(_decode_presig(i, p) for i, p in enumerate(body["presignatures"]))
    except (InvalidRecord, TypeError) as e:
        raise BackupCorrupt(f"invalid record: {e}") from None
    key_ids = [k.key_id for k in keys]
    if len(set(key_ids)) != len(key_ids):
        raise BackupCorrupt("duplicate key ids")
    if len({p.presig_id for p in presigs}) != len(presigs):
        raise BackupCorrupt("duplicate presignature ids")
    if not {p.key_id for p in presigs} <= set(key_ids):
        raise BackupCorrupt("a presignature refers to a key that is not in the backup")
    return Snapshot(keys, presigs)


def _decode_key(i: int, k: Any, version: int) -> KeyRecord:
    if not isinstance(k, dict) or set(k) != (_KEY_FIELDS_V1 if version == 1 else _KEY_FIELDS_V2):
        raise BackupCorrupt(f"key record {i} has the wrong fields")
    fields = {**k, "party_ids": tuple(k["party_ids"])}
    for name in ("public_key", "chain_code", "sealed_share"):
        fields[name] = _unb64(k[name], name)
    fields["created_at"] = _time(k["created_at"], "created_at")
    if version > 1:
        if not isinstance(k["party_names"], list):
            raise BackupCorrupt(f"key record {i}: party_names is not a list")
        fields["party_names"] = tuple(k["party_names"])
        fields["retired_at"] = _time(k["retired_at"], "retired_at")
    return KeyRecord(**fields)


def _decode_presig(i: int, p: Any) -> StoredPresignature:
    if not isinstance(p, dict) or set(p) != _PRESIG_FIELDS:
        raise BackupCorrupt(f"presignature record {i} has the wrong fields")
    fields = {**p, "signer_set": tuple(p["signer_set"]), "sealed": _unb64(p["sealed"], "sealed")}
    fields["created_at"] = _time(p["created_at"], "created_at")
    return StoredPresignature(**fields)


def _write_new_file(path: Path, data: bytes) -> None:
    """Write `data` to a new file at `path` (mode 0600): fully and durably, or not at all, and
    never replacing an existing file (hard-linking a finished temporary file fails if the name
    exists)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path} already exists; refusing to overwrite") from None
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)


async def export_backup(
    store: Store,
    path: Path,
    *,
    hmac_key: bytes | None = None,
    caller: str = "cli",
    clock: Callable[[], datetime] = now_utc,
) -> ExportReport:
    """Write a backup of `store` to the new file `path` and record it in the audit log."""
    path = Path(path)
    snapshot = await store.export_snapshot()
    data = encode_backup(snapshot, created_at=clock(), hmac_key=hmac_key)
    _write_new_file(path, data)
    report = ExportReport(
        path=path,
        keys=len(snapshot.keys),
        presignatures=len(snapshot.presignatures),
        sha256=hashlib.sha256(data).hexdigest(),
        authenticated=hmac_key is not None,
    )
    await store.append_audit(
        AuditRecord(
            operation="export",
            caller=caller,
            session_id="",
            result="ok",
            reason=f"backup of {report.keys} keys and {report.presignatures} presignatures, sha256 {report.sha256}",
        )
    )
    return report


async def import_backup(
    store: Store,
    path: Path,
    *,
    hmac_key: bytes | None = None,
    restore_presignatures: bool = False,
    revive: Collection[str] = (),
    caller: str = "cli",
) -> ImportReport:
    """Verify the backup at `path` and import it all-or-nothing (see the module notes). A share
    of a key this store records as retired is restored only if `revive` names the key
    (WouldRevive, naming every such key, otherwise)."""
    try:
        data = Path(path).read_bytes()
        snapshot = decode_backup(data, hmac_key=hmac_key)
        report = await store.import_snapshot(
            snapshot, restore_presignatures=restore_presignatures, revive=frozenset(revive)
        )
    except StorageError as e:
        await _audit_import(store, caller, "failed", f"{type(e).__name__}: {e}")
        raise
    await _audit_import(
        store,
        caller,
        "ok",
        f"imported {len(report.keys_imported)} keys (skipped {len(report.keys_skipped)} identical), "
        f"{report.presignatures_imported} presignatures (skipped {report.presignatures_skipped}, "
        f"not restored {report.presignatures_not_restored})"
        + (f"; REVIVED retired keys {', '.join(report.keys_revived)}" if report.keys_revived else ""),
    )
    return report


async def _audit_import(store: Store, caller: str, result: Result, reason: str) -> None:
    try:
        await store.append_audit(
            AuditRecord(operation="import", caller=caller, session_id="", result=result, reason=reason[:2048])
        )
    except StorageError:
        if result == "ok":
            raise
        # recording a failed import must not hide why it failed
