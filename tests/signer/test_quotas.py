"""Per-caller quotas: running sessions per caller and per client, and the token bucket of GG20
starts, with an injected clock; each refusal names its configuration key and is counted."""

from __future__ import annotations

import math

import pytest

from mpc.v1 import enclave_pb2 as epb
from signer.errors import ResourceExhausted
from signer.sessions.quotas import CallerId, CallerQuotas, presigns

A = CallerId("mpc-service", "tenant-a")
B = CallerId("mpc-service", "tenant-b")
OTHER_CLIENT = CallerId("relay-2", "tenant-a")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_running_sessions_per_caller_and_per_client() -> None:
    refused: list[str] = []
    quotas = CallerQuotas(per_caller_max=2, per_client_max=3, refused=refused.append)
    quotas.acquire(A)
    quotas.acquire(A)
    with pytest.raises(
        ResourceExhausted,
        match=r"caller 'tenant-a' of client 'mpc-service' has 2 running sessions "
        r"\(sessions.per_caller_max\)",
    ):
        quotas.acquire(A)
    quotas.acquire(B)
    client_full = r"client 'mpc-service' has 3 running sessions \(sessions.per_client_max\)"
    with pytest.raises(ResourceExhausted, match=client_full):
        quotas.acquire(B)
    quotas.acquire(OTHER_CLIENT)  # another certificate is not this client's
    assert refused == ["sessions.per_caller_max", "sessions.per_client_max"]
    quotas.release(A)
    quotas.acquire(B)
    assert quotas.running(A) == 1 and quotas.running(B) == 2
    for caller in (A, B, B, OTHER_CLIENT):
        quotas.release(caller)
    assert quotas._by_caller == {} and quotas._by_client == {}  # nothing kept for idle callers


def test_token_bucket_of_gg20_starts() -> None:
    clock = Clock()
    refused: list[str] = []
    quotas = CallerQuotas(
        per_caller_max=100, gg20_starts_per_second=2.0, gg20_starts_burst=3, clock=clock, refused=refused.append
    )
    for _ in range(3):
        quotas.acquire(A, presigning=True)
    too_fast = r"sessions.gg20_starts_per_second \(2/s, bursts of 3\); retry in 0.5 s"
    with pytest.raises(ResourceExhausted, match=too_fast):
        quotas.acquire(A, presigning=True)
    assert quotas.running(A) == 3  # the refused start is not counted
    quotas.acquire(A)  # a start that does not presign takes no token
    quotas.acquire(B, presigning=True)  # another caller has its own bucket
    clock.now += 0.5
    quotas.charge(A)
    with pytest.raises(ResourceExhausted):
        quotas.charge(A)
    assert refused == ["sessions.gg20_starts_per_second"] * 2
    clock.now += 10
    assert quotas.prune() == 2 and quotas._buckets == {}  # refilled buckets are forgotten
    for _ in range(3):
        quotas.charge(A)  # a full burst again


def test_no_rate_configured_charges_nothing() -> None:
    quotas = CallerQuotas(per_caller_max=10, gg20_starts_per_second=math.inf)
    for _ in range(100):
        quotas.charge(A)
    assert quotas._buckets == {}


def test_which_starts_presign() -> None:
    def start(kind: int, protocol: int = epb.PROTOCOL_GG20_SECP256K1, presignature_id: str = "") -> epb.SessionStart:
        return epb.SessionStart(kind=kind, protocol=protocol, presignature_id=presignature_id)  # type: ignore[arg-type]

    assert presigns(start(epb.SESSION_KIND_DKG))
    assert presigns(start(epb.SESSION_KIND_PRESIGN))
    assert presigns(start(epb.SESSION_KIND_SIGN))  # no presignature: presigning runs in the session
    assert not presigns(start(epb.SESSION_KIND_SIGN, presignature_id="ab" * 32))
    assert not presigns(start(epb.SESSION_KIND_DKG, protocol=epb.PROTOCOL_FROST_ED25519))
    assert not presigns(start(epb.SESSION_KIND_SIGN, protocol=epb.PROTOCOL_FROST_ED25519))
    # a GG20 refresh takes a fresh Paillier key from the pool, like a key generation
    assert presigns(start(epb.SESSION_KIND_REFRESH))
    assert not presigns(start(epb.SESSION_KIND_REFRESH, protocol=epb.PROTOCOL_FROST_ED25519))
