"""Pre-parameters sealed at rest: export once, import into a fresh engine whose own prime source
cannot deliver, and a GG20 key generation runs on the imported pairs; bad blobs are refused one
by one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.engine import Engine, EngineConfig
from enclave.engine.engine import preparams_binding
from enclave.primes import FixtureSource, SafePrimePair, decode_pair, encode_pair
from enclave.sealing import LocalSealer, generate_key_file
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


def sealed_blob(sealer: LocalSealer, item_id: str, pair: SafePrimePair) -> pb.SealedBlob:
    """Sealed exactly as the engine seals (the test's own sealing key, chosen contents)."""
    data = sealer.seal(encode_pair(pair), preparams_binding(item_id))
    return pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_PREPARAMS, id=item_id, data=data)


async def export_all(engine: Engine, want: int) -> list[pb.SealedBlob]:
    got: list[pb.SealedBlob] = []
    for _ in range(200):
        got += (await engine.preparams_export(pb.PreparamsExport())).sealed
        if len(got) >= want:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(got)} pre-parameter sets exported")


async def test_export_once_import_after_restart_then_keygen(
    engines: dict[str, Engine], sealer: LocalSealer
) -> None:
    alice = engines["alice"]
    blobs = await export_all(alice, 3)
    assert len(blobs) == 3 and len({b.id for b in blobs}) == 3
    for b in blobs:
        assert b.kind == pb.SEALED_BLOB_KIND_PREPARAMS and len(b.id) == 32
        # The host sees ciphertext only: no prime appears in the blob.
        pair = decode_pair(sealer.unseal(b.data, preparams_binding(b.id)), 2048)
        for v in (pair.p, pair.q):
            assert v.to_bytes(128, "big") not in b.data
    # Each exported once.
    again = await alice.preparams_export(pb.PreparamsExport())
    assert list(again.sealed) == [] and again.pool_size == 3

    blocked = BlockedSource()
    fresh = restarted(sealer, blocked)
    try:
        assert fresh.preparams_ready() == 0
        # Without an import the key generation would wait on the search and be refused.
        starts = {p: relay.dkg("pp-dkg-0", GG20, ("alice", "bob"), 2, p) for p in ("alice", "bob")}
        with pytest.raises(Exception, match="pre-parameters"):
            await relay.run({"alice": fresh, "bob": engines["bob"]}, starts)

        answer = await fresh.preparams_import(pb.PreparamsImport(sealed=blobs))
        assert list(answer.imported_ids) == [blobs[0].id, blobs[1].id]
        assert [(r.id, r.code) for r in answer.refused] == [(blobs[2].id, pb.ERROR_CODE_RESOURCE_EXHAUSTED)]
        assert answer.ready == 2 == fresh.preparams_ready()

        starts = {p: relay.dkg("pp-dkg-1", GG20, ("alice", "bob"), 2, p) for p in ("alice", "bob")}
        res = relay.results(await relay.run({"alice": fresh, "bob": engines["bob"]}, starts))
        assert res["alice"].key_id == res["bob"].key_id
        assert fresh.preparams_ready() == 1  # the pair used left the pool
        assert blocked.calls >= 1  # the search was asked for and never delivered
        # Imported pairs are not exported again (their stored copies were deleted on import).
        assert list((await fresh.preparams_export(pb.PreparamsExport())).sealed) == []
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
    foreign_id = "f" * 32
    pair = decode_pair(sealer.unseal(good[1].data, preparams_binding(good[1].id)), 2048)
    foreign = sealed_blob(other_key, foreign_id, pair)
    small = FixtureSource(safe_primes.primes(1536))(3072)  # safe primes, but not the configured size
    wrong_size = sealed_blob(sealer, "a" * 32, small)
    not_safe = sealed_blob(sealer, "b" * 32, SafePrimePair(pair.p, pair.q + 2))

    blocked = BlockedSource()
    fresh = restarted(sealer, blocked, size=3)
    try:
        answer = await fresh.preparams_import(
            pb.PreparamsImport(sealed=[tampered, moved, foreign, wrong_size, not_safe, good[1]])
        )
        assert list(answer.imported_ids) == [good[1].id]
        refused = {r.id: r.code for r in answer.refused}
        assert refused == {
            good[0].id: pb.ERROR_CODE_SEALED_BLOB_INVALID,
            "0" * 32: pb.ERROR_CODE_SEALED_BLOB_INVALID,
            foreign_id: pb.ERROR_CODE_SEALED_BLOB_INVALID,
            "a" * 32: pb.ERROR_CODE_INVALID_ARGUMENT,
            "b" * 32: pb.ERROR_CODE_INVALID_ARGUMENT,
        }
        for r in answer.refused:  # no value of a prime in any message
            assert str(pair.p) not in r.message and f"{pair.p:x}" not in r.message
        assert fresh.preparams_ready() == 1
        # The same pair again (as another blob of it would be): not added twice.
        again = await fresh.preparams_import(pb.PreparamsImport(sealed=[good[1]]))
        assert [r.code for r in again.refused] == [pb.ERROR_CODE_ALREADY_EXISTS]
    finally:
        fresh.close()
        blocked.release.set()
