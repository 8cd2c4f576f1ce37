"""Two signer instances sharing one PostgreSQL store (a fresh schema) and one sealing key: each
serves sessions for keys that either created; a presignature is used once, through the instance
whose enclave made it (another instance's enclave refuses it). A session belongs to the
instance that started it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from tests.conftest import SignerProcess
from tests.ops.nodes import start_node
from tests.service.conftest import FROST, GG20, KECCAK, PG_BASE, check_signature, dkg, message_for, presign, sign

pytestmark = pytest.mark.postgres
PARTIES = ("client", "signer")


@pytest.fixture
def shared_store() -> Iterator[str]:
    schema = f"test_ops_scale_{secrets.token_hex(6)}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())


async def test_two_instances_share_keys_through_one_store(
    tmp_path: Path,
    shared_store: str,
    start_signer: Callable[..., SignerProcess],
    local,
    connect,  # type: ignore[no-untyped-def]
) -> None:
    sealing_key = tmp_path / "sealing.key"
    a = start_node(start_signer, tmp_path / "a", "signer-a", shared_store, sealing_key, prime_slice=1)
    b = start_node(start_signer, tmp_path / "b", "signer-b", shared_store, sealing_key, prime_slice=2)
    via_a = Relay({"client": local, "signer": connect(a)})
    via_b = Relay({"client": local, "signer": connect(b)})

    frost_key = await dkg(via_a, FROST, PARTIES, 2)  # made on A ...
    gg20_key = await dkg(via_b, GG20, PARTIES, 2)  # ... and on B
    for relay, protocol, key in ((via_b, FROST, frost_key), (via_a, GG20, gg20_key), (via_a, FROST, frost_key)):
        message = message_for(protocol, f"cross-instance {protocol}".encode())
        check_signature(protocol, key.public_key, message, await sign(relay, protocol, PARTIES, key.key_id, message))

    # A presignature is sealed under the key of the enclave boot that made it: one made through B
    # signs through B once, then through neither; one made through B is refused by A's enclave.
    presignature_id = await presign(via_b, PARTIES, gg20_key.key_id)
    other_id = await presign(via_b, PARTIES, gg20_key.key_id)
    text = b"with a presignature of this instance"
    digest = message_for(GG20, text)
    result = await sign(
        via_b, GG20, PARTIES, gg20_key.key_id, text, presignature_id=presignature_id, message_hash=KECCAK
    )
    check_signature(GG20, gg20_key.public_key, digest, result)
    client_a, client_b = connect(a), connect(b)
    for client, pid in ((client_b, presignature_id), (client_a, presignature_id), (client_a, other_id)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.start_sign(
                pb.StartSignRequest(
                    session_id=f"reuse-{secrets.token_hex(4)}",
                    protocol=pb.PROTOCOL_GG20_SECP256K1,
                    key_id=gg20_key.key_id,
                    party_ids=list(PARTIES),
                    self_party_id="signer",
                    message=text,
                    presignature_id=pid,
                    message_hash=KECCAK,
                )
            )
        assert err.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)
    assert "by another instance's enclave" in (err.value.details() or "")  # B's, refused by A

    # Session affinity: a session lives on the instance that started it; the other does not know it.
    session_id = f"affinity-{secrets.token_hex(4)}"
    started = await client_a.start_sign(
        pb.StartSignRequest(
            session_id=session_id,
            protocol=pb.PROTOCOL_FROST_ED25519,
            key_id=frost_key.key_id,
            party_ids=list(PARTIES),
            self_party_id="signer",
            message=b"affinity",
        )
    )
    assert started.state == pb.SESSION_STATE_RUNNING
    assert (await client_a.sign_status(session_id)).state == pb.SESSION_STATE_RUNNING
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client_b.sign_status(session_id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    a.stop()
    b.stop()
