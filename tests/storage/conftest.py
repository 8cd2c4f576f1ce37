"""One storage suite, run against SQLite (a file in tmp_path) and PostgreSQL (a throwaway schema).

PostgreSQL: MPC_TEST_POSTGRES_URL (default postgresql://127.0.0.1:5432/test, trust auth). Each
test gets its own `test_<random>` schema, selected through the libpq `options` parameter and
dropped afterwards, so parallel runs never see each other's tables.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from signer.storage import KeyRecord, Store, StoredPresignature, open_store

PG_BASE = os.environ.get("MPC_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


class StoreLocation:
    """Where one store lives, plus raw access that bypasses the Store API (for checks)."""

    def __init__(self, backend: str, url: str, schema: str | None = None) -> None:
        self.backend, self.url, self.schema = backend, url, schema

    def raw(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on a fresh connection (autocommit); `?` placeholders on both backends."""
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.url[len("sqlite://") :], isolation_level=None)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s").encode(), params)
            return cur.fetchall() if cur.description else []


class Locations:
    """Makes fresh, empty store locations on one backend and cleans them up."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend, self._tmp, self._schemas = backend, tmp_path, []  # type: ignore[var-annotated]

    def new(self) -> StoreLocation:
        if self.backend == "sqlite":
            path = self._tmp / f"store-{secrets.token_hex(4)}" / "signer.db"
            return StoreLocation("sqlite", f"sqlite://{path}")
        schema = f"test_{secrets.token_hex(6)}"
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}".encode())
        self._schemas.append(schema)
        return StoreLocation("postgresql", f"{PG_BASE}?options=-csearch_path%3D{schema}", schema)

    def cleanup(self) -> None:
        if not self._schemas:
            return
        with psycopg.connect(PG_BASE, autocommit=True) as conn:
            for schema in self._schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def locations(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Locations]:
    locs = Locations(request.param, tmp_path)
    yield locs
    locs.cleanup()


@pytest.fixture
def loc(locations: Locations) -> StoreLocation:
    return locations.new()


class Clock:
    """Injected time: starts at a fixed instant, advances one second per reading."""

    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(loc: StoreLocation, clock: Clock) -> AsyncIterator[Store]:
    s = await open_store(loc.url, clock=clock)
    yield s
    await s.close()


def make_key(n: int = 1, **kw: Any) -> KeyRecord:
    base: dict[str, Any] = dict(
        key_id=f"{n:064x}",
        protocol="gg20-secp256k1",
        party_id=2,
        threshold=2,
        party_ids=(1, 2, 3),
        public_key=bytes([2]) + n.to_bytes(32, "big"),
        chain_code=bytes(32),
        sealer_kind="local",
        sealed_share=b"MPCS" + secrets.token_bytes(60),
    )
    base.update(kw)
    return KeyRecord(**base)


def make_presig(key: KeyRecord, i: int, signers: tuple[int, ...] = (1, 2), **kw: Any) -> StoredPresignature:
    base: dict[str, Any] = dict(
        presig_id=f"ps-{key.key_id[-6:]}-{i}",
        key_id=key.key_id,
        signer_set=signers,
        sealer_kind="local",
        sealed=b"MPCS" + secrets.token_bytes(40),
    )
    base.update(kw)
    return StoredPresignature(**base)


StoreFactory = Callable[[], StoreLocation]
