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


class KeyRetired(StorageError):
    """The key is retired on this node: its share is gone, nothing can be added to it."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"key {key_id} is retired")


class SuccessorNotStored(StorageError):
    """Retiring the key would leave this node without a share of its lineage: a successor of the
    key is recorded here, and none of its successors holds a share on this node."""

    def __init__(self, key_id: str, successors: Iterable[str]) -> None:
        self.key_id, self.successors = key_id, tuple(sorted(successors))
        super().__init__(
            f"key {key_id} has successor(s) {', '.join(self.successors)} recorded here, none of them holding a share"
        )


class WouldRevive(StorageError):
    """An import would bring back shares of keys this store records as retired; nothing was written."""

    def __init__(self, key_ids: Iterable[str]) -> None:
        self.key_ids = tuple(sorted(key_ids))
        super().__init__(
            f"the backup holds shares of key(s) retired in this store: {', '.join(self.key_ids)}; "
            "name each one to revive it, or leave it retired"
        )


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
