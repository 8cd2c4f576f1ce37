"""Pre-parameters sealed at rest under the enclave's per-boot key: exported once, useless to any
later boot (refused as "sealed in an earlier enclave boot", nothing added to the pool), and never
added twice in one boot (a used set's blob is refused by the enclave's own record); bad blobs are
refused one by one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.crypto.primes import FixtureSource, SafePrimePair, decode_pair, encode_pair
from enclave.engine import Engine, EngineConfig
from enclave.engine.blobs import PreparamsRecord
from enclave.engine.engine import preparams_binding
from enclave.sealing import LocalSealer, SealingError, generate_key_file
from mpc.v1 import enclave_pb2 as pb
from tests.enclave import safe_primes
from tests.engine import relay

GG20 = pb.PROTOCOL_GG20_SECP256K1


class BlockedSource:
    """A prime source that never delivers while the test runs (an enclave just restarted, whose
    search would take seconds): anything the pool holds came from an import."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, modulus_bits: int) -> SafePrimePair:
        self.calls += 1
        self.release.wait()
        # Released at teardown, after the engine closed: the stopped pool discards this.
        return FixtureSource(safe_primes.primes(1024))(modulus_bits)


@pytest.fixture
def sealer(tmp_path: Path) -> LocalSealer:
    return generate_key_file(tmp_path / "alice.key")


@pytest.fixture
def engines(tmp_path: Path, sealer: LocalSealer) -> Iterator[dict[str, Engine]]:
    """'alice' with a working fixture source (pool of 3), 'bob' an ordinary peer."""
    source = FixtureSource(safe_primes.primes(1024)[0::2])
    made = {
        "alice": Engine(sealer, config=EngineConfig(preparams_pool_size=3, workers=2), prime_source=source),
        "bob": relay.make_engines(["bob"], tmp_path, FixtureSource(safe_primes.primes(1024)[1::2]))["bob"],
    }
    yield made
    for e in made.values():
        e.close()


def restarted(sealer: LocalSealer, blocked: BlockedSource, size: int = 2) -> Engine:
    cfg = EngineConfig(preparams_pool_size=size, workers=2, preparams_wait_seconds=1.0)
    return Engine(sealer, config=cfg, prime_source=blocked)


def sealed_blob(engine: Engine, item_id: str, pair: SafePrimePair, sealer: LocalSealer | None = None) -> pb.SealedBlob:
    """Sealed exactly as `engine` seals (its boot key unless `sealer` is given, a fresh number of
    its ledger), with chosen contents."""
    record = PreparamsRecord(engine.used_preparams.issue(), encode_pair(pair))
    data = (sealer or engine.boot_sealer).seal(record.encode(), preparams_binding(item_id))
    return pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_PREPARAMS, id=item_id, data=data)


def opened(engine: Engine, blob: pb.SealedBlob) -> SafePrimePair:
    plaintext = engine.boot_sealer.unseal(blob.data, preparams_binding(blob.id))
    return decode_pair(PreparamsRecord.decode(plaintext).pair, 2048)


async def export_all(engine: Engine, want: int) -> list[pb.SealedBlob]:
    got: list[pb.SealedBlob] = []
    for _ in range(200):
        got += (await engine.preparams_export(pb.PreparamsExport())).sealed
        if len(got) >= want:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(got)} pre-parameter sets exported")


async def test_exported_sets_are_refused_after_a_restart(engines: dict[str, Engine], sealer: LocalSealer) -> None:
    alice = engines["alice"]
    blobs = await export_all(alice, 3)
    assert len(blobs) == 3 and len({b.id for b in blobs}) == 3
    for b in blobs:
        assert b.kind == pb.SEALED_BLOB_KIND_PREPARAMS and len(b.id) == 32
        # Sealed under this boot's key, not the durable one; the host sees ciphertext only.
        with pytest.raises(SealingError):
            sealer.unseal(b.data, preparams_binding(b.id))
        pair = opened(alice, b)
        for v in (pair.p, pair.q):
            assert v.to_bytes(128, "big") not in b.data
    # Each exported once.
    again = await alice.preparams_export(pb.PreparamsExport())
    assert list(again.sealed) == [] and again.pool_size == 3

    blocked = BlockedSource()
    fresh = restarted(sealer, blocked)  # same durable key, a new boot
    try:
        answer = await fresh.preparams_import(pb.PreparamsImport(sealed=blobs))
        assert list(answer.imported_ids) == []
        assert [(r.id, r.code) for r in answer.refused] == [(b.id, pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT) for b in blobs]
        assert all("sealed in an earlier enclave boot" in r.message for r in answer.refused)
        assert answer.ready == 0 == fresh.preparams_ready()
        # Nothing was added: a key generation waits on the (blocked) search and is refused.
        starts = {p: relay.dkg("pp-dkg-0", GG20, ("alice", "bob"), 2, p) for p in ("alice", "bob")}
        with pytest.raises(Exception, match="pre-parameters"):
            await relay.run({"alice": fresh, "bob": engines["bob"]}, starts)
        assert blocked.calls >= 1
    finally:
        fresh.close()
        blocked.release.set()


async def test_a_used_set_is_refused_in_the_same_boot(engines: dict[str, Engine]) -> None:
    alice = engines["alice"]
    blobs = await export_all(alice, 3)
    # Still pooled (the pool is full): the enclave holds it already.
    answer = await alice.preparams_import(pb.PreparamsImport(sealed=[blobs[1]]))
    assert [r.code for r in answer.refused] == [pb.ERROR_CODE_RESOURCE_EXHAUSTED]
    starts = {p: relay.dkg("pp-dkg-3", GG20, ("alice", "bob"), 2, p) for p in ("alice", "bob")}
    relay.results(await relay.run(engines, starts))  # takes blobs[0]'s pair
    answer = await alice.preparams_import(pb.PreparamsImport(sealed=[blobs[0]]))
    assert list(answer.imported_ids) == []
    assert [(r.code, r.message) for r in answer.refused] == [
        (pb.ERROR_CODE_FAILED_PRECONDITION, "pre-parameter set already used")
    ]
    assert alice.used_preparams.stats()[2] >= 1


async def test_an_imported_set_is_added_once(engines: dict[str, Engine]) -> None:
    blocked = BlockedSource()
    fresh = restarted(LocalSealer(bytes(32)), blocked, size=2)
    try:
        pair = FixtureSource(safe_primes.primes(1024)[0::2])(2048)
        blob = sealed_blob(fresh, "c" * 32, pair)
        first = await fresh.preparams_import(pb.PreparamsImport(sealed=[blob]))
        assert list(first.imported_ids) == [blob.id] and fresh.preparams_ready() == 1
        fresh.pool.take(timeout=0)  # used for a key
        again = await fresh.preparams_import(pb.PreparamsImport(sealed=[blob]))
        assert [(r.code, r.message) for r in again.refused] == [
            (pb.ERROR_CODE_FAILED_PRECONDITION, "pre-parameter set already used")
        ]
        assert fresh.preparams_ready() == 0
    finally:
        fresh.close()
        blocked.release.set()


async def test_consumed_exports_reported(engines: dict[str, Engine]) -> None:
    alice = engines["alice"]
    blobs = await export_all(alice, 3)
    starts = {p: relay.dkg("pp-dkg-2", GG20, ("alice", "bob"), 2, p) for p in ("alice", "bob")}
    relay.results(await relay.run(engines, starts))
    answer = await alice.preparams_export(pb.PreparamsExport())
    assert list(answer.consumed_ids) == [blobs[0].id]  # the host deletes its stored copy
    assert list((await alice.preparams_export(pb.PreparamsExport())).consumed_ids) == []


async def test_bad_blobs_refused_others_imported(
    engines: dict[str, Engine], sealer: LocalSealer, tmp_path: Path
) -> None:
    good = await export_all(engines["alice"], 2)
    tampered = pb.SealedBlob()
    tampered.CopyFrom(good[0])
    tampered.data = good[0].data[:-1] + bytes([good[0].data[-1] ^ 1])
    moved = pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_PREPARAMS, id="0" * 32, data=good[1].data)  # other id
    other_key = generate_key_file(tmp_path / "other.key")
    pair = opened(engines["alice"], good[1])

    blocked = BlockedSource()
    fresh = restarted(sealer, blocked, size=3)
    try:
        # Blobs of this boot with chosen contents, one sealed under another (durable) key, and
        # the first one's bytes moved, altered or stale.
        mine = sealed_blob(fresh, "d" * 32, pair)
        tampered = pb.SealedBlob()
        tampered.CopyFrom(mine)
        tampered.id = "e" * 32
        tampered.data = mine.data[:-1] + bytes([mine.data[-1] ^ 1])
        moved = pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_PREPARAMS, id="0" * 32, data=mine.data)  # other id
        foreign = sealed_blob(fresh, "f" * 32, pair, sealer=other_key)
        small = FixtureSource(safe_primes.primes(1536))(3072)  # safe primes, but not the configured size
        wrong_size = sealed_blob(fresh, "a" * 32, small)
        not_safe = sealed_blob(fresh, "b" * 32, SafePrimePair(pair.p, pair.q + 2))
        answer = await fresh.preparams_import(
            pb.PreparamsImport(sealed=[tampered, moved, foreign, good[0], wrong_size, not_safe, mine])
        )
        assert list(answer.imported_ids) == [mine.id]
        refused = {r.id: r.code for r in answer.refused}
        assert refused == {
            "e" * 32: pb.ERROR_CODE_SEALED_BLOB_INVALID,
            "0" * 32: pb.ERROR_CODE_SEALED_BLOB_INVALID,
            "f" * 32: pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT,
            good[0].id: pb.ERROR_CODE_SEALED_IN_EARLIER_BOOT,
            "a" * 32: pb.ERROR_CODE_INVALID_ARGUMENT,
            "b" * 32: pb.ERROR_CODE_INVALID_ARGUMENT,
        }
        for r in answer.refused:  # no value of a prime in any message
            assert str(pair.p) not in r.message and f"{pair.p:x}" not in r.message
        assert fresh.preparams_ready() == 1
        # The same blob again: its number is used; another blob of the pair: not added twice.
        again = await fresh.preparams_import(pb.PreparamsImport(sealed=[mine, sealed_blob(fresh, "9" * 32, pair)]))
        assert [r.code for r in again.refused] == [pb.ERROR_CODE_FAILED_PRECONDITION, pb.ERROR_CODE_ALREADY_EXISTS]
    finally:
        fresh.close()
        blocked.release.set()
