"""The message bounds of enclave/engine/limits.py against honest runs: every message fits its
round's bound at the largest party count the enclave takes (64), and the bounds are tight (an
honest message comes close to them). The engines enforce the bounds themselves, so a DONE run is
already proof that nothing honest was refused; the sizes are checked here too, message by
message. Signatures are verified with PyNaCl and coincurve."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from coincurve import PublicKey, PublicKeyXOnly
from nacl.signing import VerifyKey

from enclave.crypto.primes import FixtureSource
from enclave.engine import Engine, limits
from enclave.engine.common import MAX_PARTIES
from enclave.protocols.driver import Driver, Expect, Kind, Next, Output, Round, Send
from mpc.v1 import enclave_pb2 as pb
from signer.client.verify import verify_frost_secp256k1
from tests.engine import relay
from tests.engine.conftest import FROST, GG20, Key

M = 2048


class Sizes:
    """Largest payload seen per (round, broadcast?), as a relay tamper hook that changes nothing."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, bool], int] = {}

    def __call__(self, recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
        key = (m.round, m.payload[3] == Kind.BROADCAST)
        self.seen[key] = max(self.seen.get(key, 0), len(m.payload))
        return m

    def check(self, bounds: limits.MessageLimits, tight: float) -> None:
        assert self.seen
        for (rnd, broadcast), size in self.seen.items():
            bound = bounds.max_bytes(rnd, broadcast)
            assert tight * bound <= size <= bound, (rnd, broadcast, size, bound)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory, prime_source: FixtureSource) -> Iterator[dict[str, Engine]]:
    names = [f"p{i:02d}" for i in range(MAX_PARTIES)]
    engines = relay.make_engines(names, tmp_path_factory.mktemp("many"), prime_source)
    yield engines
    for e in engines.values():
        e.close()


async def test_frost_at_64_parties_fits(many: dict[str, Engine]) -> None:
    names = tuple(many)
    # the largest round-1 package: threshold 64 (its size grows with the threshold only)
    starts = await asyncio.gather(*(many[p].start(relay.dkg("t64", FROST, names, 64, p)) for p in names))
    first = max(len(m.payload) for u in starts for m in u.outgoing)
    assert first == limits.for_session("frost", "dkg", 64, 64, M).max_bytes(1, True)
    for p in names:
        await many[p].abort(pb.SessionAbort(session_id="t64"))
    # a whole DKG (threshold 2 keeps it quick) and a signature by all 64
    sizes = Sizes()
    dkg = relay.results(await relay.run(many, {p: relay.dkg("d64", FROST, names, 2, p) for p in names}, sizes))
    sizes.check(limits.for_session("frost", "dkg", 64, 2, M), 1.0)
    sizes = Sizes()
    starts = {p: relay.sign("s64", FROST, names, p, dkg[p].sealed_share, b"m64") for p in names}
    out = relay.results(await relay.run(many, starts, sizes))
    sizes.check(limits.for_session("frost", "sign", 64, 0, M), 1.0)
    VerifyKey(dkg[names[0]].public_key).verify(b"m64", out[names[-1]].signature)


@pytest.mark.parametrize(
    ("protocol", "element", "signature"),
    [(pb.PROTOCOL_FROST_SECP256K1, 33, 65), (pb.PROTOCOL_FROST_SECP256K1_TR, 33, 64)],
    ids=["secp256k1", "taproot"],
)
async def test_frost_secp256k1_suites_fit_their_own_bounds(
    many: dict[str, Engine], protocol: int, element: int, signature: int
) -> None:
    # secp256k1 elements are 33 bytes and the suites' proof signatures 65 or 64: bounds sized
    # for Ed25519 would refuse every honest message, bounds too loose would not be tight
    names = tuple(many)[:8]
    engines = {p: many[p] for p in names}
    tag = f"{protocol}"
    sizes = Sizes()
    starts = {p: relay.dkg(f"d{tag}", protocol, names, 3, p) for p in names}
    dkg = relay.results(await relay.run(engines, starts, sizes))
    sizes.check(limits.for_session("frost", "dkg", 8, 3, M, element_len=element, signature_len=signature), 1.0)
    sizes = Sizes()
    signers = names[:3]
    signs = {p: relay.sign(f"s{tag}", protocol, signers, p, dkg[p].sealed_share, b"m8") for p in signers}
    out = relay.results(await relay.run({p: many[p] for p in signers}, signs, sizes))
    sizes.check(limits.for_session("frost", "sign", 3, 0, M, element_len=element), 1.0)
    key, sig = dkg[names[0]].public_key, out[signers[-1]].signature
    if protocol == pb.PROTOCOL_FROST_SECP256K1_TR:
        assert PublicKeyXOnly(key).verify(sig, b"m8")
    else:
        assert verify_frost_secp256k1(key, b"m8", sig)


async def test_gg20_keygen_first_round_at_64_parties_fits(many: dict[str, Engine]) -> None:
    names = tuple(many)
    update = await many[names[0]].start(relay.dkg("g64", GG20, names, 2, names[0]))
    await many[names[0]].abort(pb.SessionAbort(session_id="g64"))
    (msg,) = update.outgoing
    bound = limits.for_session("gg20", "dkg", 64, 2, M).max_bytes(1, True)
    assert 0.98 * bound <= len(msg.payload) <= bound


async def test_gg20_rounds_fit_and_the_bounds_are_close(gg20_2of3: Key) -> None:
    parties = gg20_2of3.parties
    engines = gg20_2of3.engines
    sizes = Sizes()
    pre = relay.results(
        await relay.run(engines, {p: relay.presign("b-pre", parties, p, gg20_2of3.shares[p]) for p in parties}, sizes)
    )
    # round 4 "ok" is two bytes where the bound allows an identification: only the way to an
    # output is compared for closeness
    ok = {k: v for k, v in sizes.seen.items() if k[0] != 4}
    bounds = limits.for_session("gg20", "presign", 3, 2, M)
    sizes.seen = ok
    sizes.check(bounds, 0.97)
    digest = hashlib.sha256(b"bounded").digest()
    sizes = Sizes()
    out = relay.results(
        await relay.run(
            engines,
            {
                p: relay.sign(
                    "b-sig",
                    GG20,
                    parties,
                    p,
                    gg20_2of3.shares[p],
                    b"bounded",
                    presignature=pre[p].sealed_presignatures[0],
                    message_hash=pb.MESSAGE_HASH_SHA256,
                )
                for p in parties
            },
            sizes,
        )
    )
    sizes.check(limits.for_session("gg20", "sign", 3, 2, M, with_presignature=True), 1.0)
    sig = out[parties[0]].signature
    assert PublicKey.from_signature_and_message(sig, digest, hasher=None).format() == gg20_2of3.public_key


def test_bounds_grow_as_the_protocol_does() -> None:
    # the identification (n-1)^2 Πdec proofs passes the 1 MiB ceiling from 24 signers: capped
    assert not limits.for_session("gg20", "presign", 23, 2, M).capped(4, True)
    capped = limits.for_session("gg20", "presign", 24, 2, M)
    assert capped.capped(4, True) and capped.max_bytes(4, True) == limits.MESSAGE_CEILING
    # reservations follow the way to an output, not the identification
    assert limits.for_session("gg20", "presign", 32, 2, M).queue_bound(31) < 2 << 20
    assert limits.for_session("frost", "sign", 3, 0, M).queue_bound(2) < 512


class _Hello(Round[bytes, None]):
    number = 1

    def __init__(self, parties: frozenset[int], to: frozenset[int]) -> None:
        self.parties, self.to = parties, to

    def expects(self) -> Expect:
        return Expect(broadcast=self.parties)

    def verify_broadcast(self, sender: int, body: bytes) -> bytes:
        return body

    def store_broadcast(self, sender: int, value: bytes) -> None:
        pass

    def finalize(self) -> Next | Output:
        return Output(None)


def test_driver_refuses_a_message_two_rounds_ahead_and_a_round_that_leaves_a_peer_out() -> None:
    from enclave.errors import BadInput
    from enclave.protocols.driver import Frame

    ps = frozenset({1, 2, 3})
    d = Driver(b"sid", 1, ps, Next(_Hello(ps, ps), (Send(None, b"hi"),)), total_rounds=3)
    d.receive(2, Frame(2, Kind.BROADCAST, (), b"next").encode())
    assert d.result is None and d.held_bytes() == 10
    d.receive(3, Frame(3, Kind.BROADCAST, (), b"later").encode())
    assert d.result is not None and d.result.culprits == frozenset({3})  # type: ignore[union-attr]
    assert "round 3 while this party is in round 1" in d.result.reason  # type: ignore[union-attr]
    with pytest.raises(BadInput, match="each other party"):
        Driver(b"sid", 1, ps, Next(_Hello(frozenset({2, 3}), ps), (Send(2, b"only 2"),)), total_rounds=1)


def test_held_budget_reserves_lends_and_reports(tmp_path: Path) -> None:
    from enclave.engine.held import HeldBudget

    b = HeldBudget(100)
    assert b.reserve(60) and not b.reserve(50) and b.lend(40) and not b.lend(1)
    b.release(60, 40)
    g = b.gauges()
    assert g["held_message_bytes_reserved"] == 0 and g["held_message_starts_refused_total"] == 1
    assert g["held_message_sessions_short_total"] == 1


@pytest.mark.parametrize(("protocol", "kind"), [("gg20", "dkg"), ("gg20", "presign"), ("frost", "dkg")])
def test_queue_bound_covers_a_direct_message_waiting_for_its_broadcast(protocol: str, kind: str) -> None:
    """A peer's direct message waits for that peer's broadcast of the same round, beside its
    messages of the next round: the reservation covers both, in every round."""
    bounds = limits.for_session(protocol, kind, 4, 2, M)
    rounds = bounds.rounds
    for r, b in enumerate(rounds):
        waiting = min(b.direct, bounds.ceiling) if b.broadcast else 0
        ahead = min(rounds[r + 1].to_output, bounds.ceiling) if r + 1 < len(rounds) else 0
        assert bounds.queue_bound(3) >= 3 * (waiting + ahead), f"round {r + 1}"
