"""Key generation and signing through the service, both protocols, verified independently.

2-of-2: the caller's local party and one signer node. 2-of-3: the local party and two signer
nodes, each with its own enclave process; every pair signs. Concurrent signatures on one key.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from signer.client.relay import Relay
from tests.service.conftest import FROST, GG20, KECCAK, PROTOCOLS, check_signature, dkg, message_for, presign, sign


@pytest.fixture(scope="module")
def pair(start_node):  # type: ignore[no-untyped-def]
    return start_node("signer-a")


@pytest.fixture(scope="module")
def second(start_node):  # type: ignore[no-untyped-def]
    return start_node("signer-b")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_two_of_two_dkg_and_sign(protocol, pair, local, connect) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "signer-a": connect(pair)})
    parties = ("client", "signer-a")
    key = await dkg(relay, protocol, parties, 2)
    message = message_for(protocol, b"two of two")
    result = await sign(relay, protocol, parties, key.key_id, message)
    assert result.key_id == key.key_id and result.public_key == key.public_key
    check_signature(protocol, key.public_key, message, result)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_two_of_three_every_pair_signs(protocol, pair, second, local, connect) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "signer-a": connect(pair), "signer-b": connect(second)})
    parties = ("client", "signer-a", "signer-b")
    key = await dkg(relay, protocol, parties, 2)
    for signers in itertools.combinations(parties, 2):
        message = message_for(protocol, f"signed by {signers}".encode())
        result = await sign(relay, protocol, signers, key.key_id, message)
        check_signature(protocol, key.public_key, message, result)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_concurrent_signatures_on_one_key(protocol, pair, local, connect) -> None:  # type: ignore[no-untyped-def]
    relay = Relay({"client": local, "signer-a": connect(pair)})
    parties = ("client", "signer-a")
    key = await dkg(relay, protocol, parties, 2)
    messages = [message_for(protocol, f"concurrent {i}".encode()) for i in range(2)]
    results = await asyncio.gather(*(sign(relay, protocol, parties, key.key_id, m) for m in messages))
    for message, result in zip(messages, results, strict=True):
        check_signature(protocol, key.public_key, message, result)
    assert results[0].signature != results[1].signature


async def test_gg20_presignature_pool(pair, local, connect) -> None:  # type: ignore[no-untyped-def]
    signer = connect(pair)
    relay = Relay({"client": local, "signer-a": signer})
    parties = ("client", "signer-a")
    key = await dkg(relay, GG20, parties, 2)
    presignature_id = await presign(relay, parties, key.key_id)
    message = message_for(GG20, b"online")
    result = await sign(relay, GG20, parties, key.key_id, b"online", presignature_id, message_hash=KECCAK)
    assert result.presignature_id == presignature_id
    check_signature(GG20, key.public_key, message, result)
    # The signer consumed it durably: naming it again is refused, for any signer set.
    import grpc

    from mpc.v1 import signer_pb2 as pb

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await signer.start_sign(
            pb.StartSignRequest(
                session_id="reuse-1",
                protocol=GG20,
                key_id=key.key_id,
                message=b"online",
                party_ids=parties,
                self_party_id="signer-a",
                presignature_id=presignature_id,
                message_hash=KECCAK,
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert FROST != GG20
