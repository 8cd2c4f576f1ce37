"""Used session ids in the host store (issue 13, item 5): durable, single claim under concurrency,
kept across a reopen of the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from signer.storage import Store, open_store

from .conftest import StoreLocation


async def test_claim_once_and_release(store: Store) -> None:
    assert not await store.session_id_used("s1")
    assert await store.claim_session_id("s1", "sign")
    assert await store.session_id_used("s1")
    assert not await store.claim_session_id("s1", "sign")  # the second start of the id
    assert not await store.claim_session_id("s1", "dkg")  # whatever kind it claims to be
    assert not await store.session_id_used("s2")
    await store.release_session_id("s1")  # a start the enclave never saw
    assert await store.claim_session_id("s1", "sign")


async def test_concurrent_claims_grant_one(loc: StoreLocation) -> None:
    stores = [await open_store(loc.url) for _ in range(4)]  # four replicas of one node
    try:
        granted = await asyncio.gather(*(s.claim_session_id("race", "sign") for s in stores for _ in range(4)))
        assert sum(granted) == 1
    finally:
        for s in stores:
            await s.close()


async def test_claims_survive_reopening_the_store(loc: StoreLocation) -> None:
    first = await open_store(loc.url)
    assert await first.claim_session_id("durable", "presign")
    await first.close()
    again = await open_store(loc.url)  # a host restart
    try:
        assert await again.session_id_used("durable")
        assert not await again.claim_session_id("durable", "presign")
        assert loc.raw("SELECT kind FROM session_ids WHERE session_id = ?", ("durable",)) == [("presign",)]
    finally:
        await again.close()
