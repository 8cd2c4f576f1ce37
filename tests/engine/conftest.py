"""Engines with their own sealing keys, and the GG20 keys made once per test session (key
generation is the expensive step)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine
from mpc.v1 import enclave_pb2 as pb
from tests.enclave import safe_primes
from tests.engine import relay

GG20 = pb.PROTOCOL_GG20_SECP256K1
FROST = pb.PROTOCOL_FROST_ED25519


@pytest.fixture(scope="session")
def prime_source() -> FixtureSource:
    return safe_primes.source()


@dataclass
class Key:
    engines: dict[str, Engine]
    parties: tuple[str, ...]
    threshold: int
    shares: dict[str, pb.SealedBlob]
    key_id: str
    public_key: bytes
    chain_code: bytes


def make_key(engines: dict[str, Engine], protocol: int, parties: tuple[str, ...], threshold: int, sid: str) -> Key:
    starts = {p: relay.dkg(sid, protocol, parties, threshold, p) for p in parties}
    res = relay.results(asyncio.run(relay.run(engines, starts)))
    first = res[parties[0]]
    return Key(
        engines,
        parties,
        threshold,
        {p: r.sealed_share for p, r in res.items()},
        first.key_id,
        first.public_key,
        first.chain_code,
    )


@pytest.fixture(scope="session")
def gg20_engines(tmp_path_factory: pytest.TempPathFactory, prime_source: FixtureSource) -> Iterator[dict[str, Engine]]:
    engines = relay.make_engines(["alice", "bob", "carol"], tmp_path_factory.mktemp("gg20-engines"), prime_source)
    yield engines
    for e in engines.values():
        e.close()


@pytest.fixture(scope="session")
def gg20_2of2(gg20_engines: dict[str, Engine]) -> Key:
    return make_key(gg20_engines, GG20, ("alice", "bob"), 2, "gg20-dkg-2of2")


@pytest.fixture(scope="session")
def gg20_2of3(gg20_engines: dict[str, Engine]) -> Key:
    return make_key(gg20_engines, GG20, ("alice", "bob", "carol"), 2, "gg20-dkg-2of3")
