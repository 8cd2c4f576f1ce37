"""Sealed pre-parameters in the host store: single use under concurrency, counting, bad ids."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from signer.storage import Store, open_store
from signer.storage.errors import InvalidRecord

from .conftest import StoreLocation


def _id() -> str:
    return secrets.token_hex(16)


async def test_put_take_count(store: Store) -> None:
    assert await store.count_preparams() == 0
    assert await store.take_preparams(5) == []
    ids = [_id() for _ in range(3)]
    for i in ids:
        assert await store.put_preparams(i, b"MPCS" + i.encode())
    assert not await store.put_preparams(ids[0], b"other")  # same id: kept as first stored
    assert await store.count_preparams() == 3
    first = await store.take_preparams(2)
    assert first == [(ids[0], b"MPCS" + ids[0].encode()), (ids[1], b"MPCS" + ids[1].encode())]
    assert await store.count_preparams() == 1
    assert await store.take_preparams(5) == [(ids[2], b"MPCS" + ids[2].encode())]
    assert await store.take_preparams(5) == []
    assert await store.take_preparams(0) == []


async def test_bad_records_refused(store: Store) -> None:
    for bad in ("", "A" * 32, "0" * 31, "0" * 64, "g" * 32):
        with pytest.raises(InvalidRecord):
            await store.put_preparams(bad, b"x")
    with pytest.raises(InvalidRecord):
        await store.put_preparams(_id(), b"")


async def test_concurrent_takers_never_share(loc: StoreLocation) -> None:
    """Four stores on one database take concurrently: every set goes to exactly one taker."""
    stores = [await open_store(loc.url) for _ in range(4)]
    try:
        ids = {_id() for _ in range(40)}
        for i in ids:
            await stores[0].put_preparams(i, i.encode())

        async def taker(s: Store) -> list[str]:
            got: list[str] = []
            while batch := await s.take_preparams(3):
                got += [i for i, _ in batch]
            return got

        results = await asyncio.gather(*(taker(s) for s in stores))
        everything = [i for r in results for i in r]
        assert sorted(everything) == sorted(ids)  # none lost, none duplicated
        assert await stores[1].count_preparams() == 0
        assert loc.raw("SELECT count(*) FROM preparams")[0][0] == 0
    finally:
        for s in stores:
            await s.close()


async def test_delete_used(store: Store) -> None:
    ids = [_id() for _ in range(3)]
    for i in ids:
        await store.put_preparams(i, b"sealed")
    assert await store.delete_preparams([ids[0], ids[2], _id()]) == 2
    assert await store.delete_preparams([]) == 0
    assert [i for i, _ in await store.take_preparams(5)] == [ids[1]]
    with pytest.raises(InvalidRecord):
        await store.delete_preparams(["nope"])
