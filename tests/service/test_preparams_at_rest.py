"""Pre-parameters sealed at rest through the real processes: the signer stores what its enclave
exports; after the enclave is killed and restarted with a prime source that never delivers, the
signer imports the stored sets (a tampered one is refused, the others imported, each stored set
handed over once) and a GG20 key generation runs without any prime search."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from grpc_health.v1 import health_pb2

from signer.client.relay import Relay
from tests.conftest import SignerProcess, wait_for
from tests.service.conftest import GG20, FixtureEnclave, Node, check_signature, dkg, message_for, sign

PARTIES = ("client", "signer-a")


class NeverEnclave(FixtureEnclave):
    """The fixture enclave whose own prime source never delivers (test harness switch)."""

    def start(self, timeout: float = 15.0) -> FixtureEnclave:
        os.environ["MPC_TEST_PRIME_SOURCE"] = "never"
        try:
            return super().start(timeout)
        finally:
            del os.environ["MPC_TEST_PRIME_SOURCE"]


async def test_restarted_enclave_gets_stored_preparams(  # type: ignore[no-untyped-def]
    tmp_path, start_signer: Callable[..., SignerProcess], local, connect
) -> None:
    enclave = FixtureEnclave(f"unix://{tmp_path}/e.sock", tmp_path, extra_args=["--preparams-pool-size", "3"])
    enclave.prime_slice = 1
    enclave.start()
    url = f"sqlite:{tmp_path}/signer.db"
    signer = start_signer(enclave, {
        "server": {"node_id": "signer-a"}, "storage": {"url": url}, "enclave": {"preparams_sync_seconds": 0.3},
    })
    node = Node("signer-a", enclave, signer, url)
    try:
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        wait_for(lambda: node.raw_sql("SELECT count(*) FROM preparams")[0][0] == 3, 20, "3 stored pre-parameter sets")
        rows = node.raw_sql("SELECT id, sealed FROM preparams ORDER BY id")
        assert all(len(i) == 32 and blob[:4] == b"MPCS" for i, blob in rows)  # sealed envelopes only

        enclave.kill()  # crash: the in-memory pool is gone
        # Someone with database access alters one stored set while the enclave is down.
        victim, blob = rows[0]
        altered = bytearray(blob)
        altered[-5] ^= 0x01
        node.raw_sql("UPDATE preparams SET sealed = ? WHERE id = ?", (bytes(altered), victim))

        restarted = NeverEnclave(enclave.address, tmp_path, extra_args=["--preparams-pool-size", "3"])
        restarted.start()
        node.enclave = restarted
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        wait_for(lambda: node.raw_sql("SELECT count(*) FROM preparams")[0][0] == 0, 20, "stored sets handed over")
        wait_for(lambda: "refused by the enclave" in signer.log(), 5, "the tampered set refused")
        assert victim in signer.log() and "authentication" in signer.log()

        relay = Relay({"client": local, "signer-a": connect(node)})
        key = await dkg(relay, GG20, PARTIES, 2)  # on an imported pair: this enclave cannot search
        message = message_for(GG20, b"made from stored pre-parameters")
        check_signature(GG20, key.public_key, message, await sign(relay, GG20, PARTIES, key.key_id, message))
        key2 = await dkg(relay, GG20, PARTIES, 2)  # the second imported pair
        assert key2.key_id != key.key_id
        # Both imported pairs are used, none is left, none was stored again.
        with pytest.raises(Exception, match="pre-parameters"):
            await dkg(relay, GG20, PARTIES, 2)
        assert node.raw_sql("SELECT count(*) FROM preparams")[0][0] == 0
    finally:
        signer.stop()
        node.enclave.stop()
