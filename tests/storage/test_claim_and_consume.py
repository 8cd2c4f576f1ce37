"""One transaction for the one-call signing path (issue 17): the session-id claim and the
presignature (FROST nonce) consumption commit together or not at all, on SQLite and PostgreSQL;
and a presigning session's batch is stored in one all-or-nothing transaction."""

from __future__ import annotations

import asyncio

import pytest

from signer.storage import (
    InvalidRecord,
    KeyNotFound,
    KeyRetired,
    PresignatureExists,
    PresignatureUnavailable,
    Store,
    open_store,
)
from tests.storage.conftest import Locations, StoreLocation, make_key, make_presig


def _consumed_by(loc: StoreLocation, presig_id: str) -> list[tuple[object, ...]]:
    return loc.raw("SELECT state, consumed_by FROM presignatures WHERE presig_id = ?", (presig_id,))


async def test_claim_and_consume_commits_both(store: Store, loc: StoreLocation) -> None:
    k = await store.put_key(make_key(40))
    p = make_presig(k, 1)
    await store.put_presignature(p)
    got = await store.claim_and_consume("one-call", "sign", k.key_id, (2, 1), p.presig_id)
    assert got is not None and got.presig_id == p.presig_id and got.sealed == p.sealed
    assert got.state == "consumed" and got.consumed_by == "one-call"
    # both durable: another connection sees the claim and the consumed, erased row
    assert loc.raw("SELECT kind FROM session_ids WHERE session_id = ?", ("one-call",)) == [("sign",)]
    assert _consumed_by(loc, p.presig_id) == [("consumed", "one-call")]
    assert bytes(loc.raw("SELECT sealed FROM presignatures WHERE presig_id = ?", (p.presig_id,))[0][0]) == b""
    assert not await store.claim_session_id("one-call", "sign")  # the id is used now


async def test_a_used_session_id_consumes_nothing(store: Store, loc: StoreLocation) -> None:
    k = await store.put_key(make_key(41))
    p = make_presig(k, 1)
    await store.put_presignature(p)
    assert await store.claim_session_id("used", "dkg")
    assert await store.claim_and_consume("used", "sign", k.key_id, (1, 2), p.presig_id) is None
    assert _consumed_by(loc, p.presig_id) == [("available", None)]
    assert loc.raw("SELECT kind FROM session_ids WHERE session_id = ?", ("used",)) == [("dkg",)]  # untouched
    assert (await store.claim_and_consume("fresh", "sign", k.key_id, (1, 2), p.presig_id)) is not None


@pytest.mark.parametrize("how", ["consumed", "unknown", "other-signers", "other-key"])
async def test_an_unavailable_presignature_leaves_the_id_unclaimed(store: Store, loc: StoreLocation, how: str) -> None:
    k = await store.put_key(make_key(42))
    p = make_presig(k, 1)
    await store.put_presignature(p)
    if how == "consumed":
        await store.consume_presignature(k.key_id, (1, 2), "earlier", p.presig_id)
    key_id, signers, presig_id = k.key_id, (1, 2), p.presig_id
    if how == "unknown":
        presig_id = "no-such-presignature"
    elif how == "other-signers":
        signers = (1, 3)
    elif how == "other-key":
        key_id = "e" * 64
    with pytest.raises(PresignatureUnavailable):
        await store.claim_and_consume("refused", "sign", key_id, signers, presig_id)
    assert not await store.session_id_used("refused")  # rolled back with the take
    assert loc.raw("SELECT count(*) FROM session_ids") == [(0,)]
    expected = ("consumed", "earlier") if how == "consumed" else ("available", None)
    assert _consumed_by(loc, p.presig_id) == [expected]


async def test_claim_and_consume_takes_the_oldest_of_a_sealer_kind(store: Store) -> None:
    k = await store.put_key(make_key(43))
    old = make_presig(k, 1, sealer_kind="boot-00000000000000aa")
    mine = make_presig(k, 2, sealer_kind="boot-00000000000000bb")
    await store.put_presignatures([old, mine])
    got = await store.claim_and_consume("s", "sign", k.key_id, (1, 2), sealer_kind="boot-00000000000000bb")
    assert got is not None and got.presig_id == mine.presig_id
    with pytest.raises(ValueError, match="session_id"):
        await store.claim_and_consume("", "sign", k.key_id, (1, 2), old.presig_id)


async def test_concurrent_claim_and_consume(locations: Locations) -> None:
    """Two stores on one database (two instances): one session id runs once, a nonce is handed
    out once, whatever the interleaving."""
    loc = locations.new()
    a, b = await open_store(loc.url), await open_store(loc.url)
    try:
        k = await a.put_key(make_key(44))
        pool = [make_presig(k, i) for i in range(4)]
        await a.put_presignatures(pool)

        async def take(s: Store, session: str, presig_id: str | None) -> str | None:
            try:
                got = await s.claim_and_consume(session, "sign", k.key_id, (1, 2), presig_id)
            except PresignatureUnavailable:
                return "unavailable"
            return None if got is None else got.presig_id

        # the same session id, 16 starts on two stores: exactly one claims and consumes
        same_id = await asyncio.gather(*(take((a, b)[i % 2], "race", None) for i in range(16)))
        assert sum(r not in (None, "unavailable") for r in same_id) == 1 and same_id.count(None) == 15
        # one named nonce, 16 sessions: one wins, and the losers' ids stay free
        named = await asyncio.gather(*(take((a, b)[i % 2], f"n-{i}", pool[1].presig_id) for i in range(16)))
        assert named.count(pool[1].presig_id) == 1 and named.count("unavailable") == 15
        rows = loc.raw("SELECT session_id FROM session_ids WHERE session_id LIKE ?", ("n-%",))
        assert len(rows) == 1
        # the rest of the pool among 16 sessions: 2 winners, distinct
        rest = await asyncio.gather(*(take((a, b)[i % 2], f"p-{i}", None) for i in range(16)))
        winners = [r for r in rest if r not in (None, "unavailable")]
        assert sorted(winners) == sorted(p.presig_id for p in pool[2:])
        assert loc.raw("SELECT count(*), count(DISTINCT consumed_by) FROM presignatures WHERE state = 'consumed'") == [
            (4, 4)
        ]
    finally:
        await a.close()
        await b.close()


async def test_put_presignatures_is_one_all_or_nothing_batch(store: Store, loc: StoreLocation) -> None:
    k = await store.put_key(make_key(45))
    batch = [make_presig(k, i) for i in range(50)]
    stored = await store.put_presignatures(batch)
    assert [p.presig_id for p in stored] == [p.presig_id for p in batch]
    assert all(p.created_at is not None and p.state == "available" for p in stored)
    assert await store.count_available(k.key_id, (1, 2)) == 50
    # an identical repeat is a no-op; a consumed id in the same slot is not revived
    await store.consume_presignature(k.key_id, (1, 2), "s", batch[0].presig_id)
    again = await store.put_presignatures(batch)
    assert again[0].state == "consumed" and await store.count_available(k.key_id) == 49
    # one conflicting record refuses the whole batch: none of its new ones is written
    fresh = [make_presig(k, 100 + i) for i in range(5)]
    clash = make_presig(k, 7, sealed=b"MPCS-different")
    with pytest.raises(PresignatureExists):
        await store.put_presignatures([*fresh, clash])
    with pytest.raises(PresignatureExists):  # a clash within the batch itself
        await store.put_presignatures([fresh[0], make_presig(k, 100, sealed=b"MPCS-other")])
    assert loc.raw("SELECT count(*) FROM presignatures WHERE presig_id LIKE ?", (f"ps-{k.key_id[-6:]}-10_",)) == [(0,)]
    assert len(await store.put_presignatures([fresh[0], fresh[0]])) == 2  # identical twice: one row
    assert await store.count_available(k.key_id) == 50
    assert await store.put_presignatures([]) == []


async def test_put_presignatures_refuses_unknown_and_retired_keys(store: Store) -> None:
    k = await store.put_key(make_key(46))
    with pytest.raises(KeyNotFound):
        await store.put_presignatures([make_presig(k, 1), make_presig(make_key(47), 1)])
    await store.retire_key(k.key_id)
    with pytest.raises(KeyRetired):
        await store.put_presignatures([make_presig(k, 2)])
    with pytest.raises(InvalidRecord):
        await store.put_presignatures([make_presig(k, 3, state="consumed")])
    assert await store.count_available(k.key_id) == 0
