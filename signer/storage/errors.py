"""Typed storage errors. The API layer maps each to one gRPC status; messages name ids, never blobs."""

from __future__ import annotations

from collections.abc import Iterable


class StorageError(Exception):
    """Base class of every error raised by signer.storage."""


class InvalidRecord(StorageError, ValueError):
    """A record handed to the store is malformed (bad key id, party set, state ...)."""


class KeyNotFound(StorageError, LookupError):
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"key {key_id} not found")


class KeyExists(StorageError):
    """A different record already holds this key id (or these ids); nothing was written."""

    def __init__(self, key_ids: str | Iterable[str]) -> None:
        self.key_ids = (key_ids,) if isinstance(key_ids, str) else tuple(sorted(key_ids))
        super().__init__(f"key(s) already stored with different content: {', '.join(self.key_ids)}")


class PresignatureExists(StorageError):
    """A different presignature already holds this id; nothing was written."""

    def __init__(self, presig_ids: str | Iterable[str]) -> None:
        self.presig_ids = (presig_ids,) if isinstance(presig_ids, str) else tuple(sorted(presig_ids))
        super().__init__(f"presignature(s) already stored with different content: {', '.join(self.presig_ids)}")


class PresignatureUnavailable(StorageError, LookupError):
    """No available presignature matched (unknown id, already consumed, other key or signer set)."""


class StoreUnavailable(StorageError):
    """The database cannot be reached or refused the operation for a transient reason; retryable."""


class StoreNotPrivate(StorageError):
    """The database file, its WAL/SHM files or their directory can be read or written by other
    local users: every sealed share, presignature and the audit trail would be theirs to copy."""


class SchemaTooNew(StorageError):
    def __init__(self, found: int, known: int) -> None:
        self.found, self.known = found, known
        super().__init__(
            f"the store's schema is at version {found} but this program knows only up to {known}; "
            "upgrade mpc-signer before opening this store"
        )


class BackupCorrupt(StorageError):
    """A backup file failed its format or integrity checks; nothing was imported."""
