"""Storage of sealed key material, presignatures and audit records: SQLite or PostgreSQL.

`open_store(url)` picks the backend:

- `sqlite:///abs/path/signer.db` (everything after `sqlite://` is the file path, so three
  slashes give an absolute path and two a relative one), or `sqlite:relative/path.db`;
- `postgresql://user@host:5432/db?options=-csearch_path%3Dschema` (also `postgres://`): any
  libpq connection URI.

The store opens, applies pending migrations, and refuses (SchemaTooNew) a database migrated by a
newer release. Nothing here imports the enclave: blobs are opaque sealed bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signer.storage.base import Store
from signer.storage.errors import (
    BackupCorrupt,
    InvalidRecord,
    KeyExists,
    KeyNotFound,
    KeyRetired,
    PresignatureExists,
    PresignatureUnavailable,
    SchemaTooNew,
    StorageError,
    StoreUnavailable,
    SuccessorNotStored,
    WouldRevive,
)
from signer.storage.migrations import LATEST_VERSION
from signer.storage.records import (
    AuditQuery,
    AuditRecord,
    ImportReport,
    KeyPage,
    KeyQuery,
    KeyRecord,
    KeyState,
    Snapshot,
    StoredPresignature,
)


async def open_store(url: str, **options: Any) -> Store:
    """Open (and migrate) the store at `url`. `options` go to the backend's `open`
    (e.g. `clock`; for PostgreSQL also `min_size`, `max_size`, `timeout`)."""
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise ValueError("sqlite store URL has no path")
        from signer.storage.sqlite import SqliteStore

        return await SqliteStore.open(Path(path), **options)
    if url.startswith(("postgresql://", "postgres://")):
        from signer.storage.postgres import PostgresStore

        return await PostgresStore.open(url, **options)
    raise ValueError("store URL must start with sqlite: or postgresql://")


__all__ = [
    "LATEST_VERSION",
    "AuditQuery",
    "AuditRecord",
    "BackupCorrupt",
    "ImportReport",
    "InvalidRecord",
    "KeyExists",
    "KeyNotFound",
    "KeyPage",
    "KeyQuery",
    "KeyRecord",
    "KeyRetired",
    "KeyState",
    "PresignatureExists",
    "PresignatureUnavailable",
    "SchemaTooNew",
    "Snapshot",
    "StorageError",
    "Store",
    "StoreUnavailable",
    "StoredPresignature",
    "SuccessorNotStored",
    "WouldRevive",
    "open_store",
]
