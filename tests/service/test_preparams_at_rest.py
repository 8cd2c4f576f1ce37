"""Pre-parameters through the real processes: the signer stores what its enclave exports, sealed
under the enclave's per-boot key. A blob whose pair made a key is refused when the host hands it
back, in the same boot and after a restart; after the enclave is killed and restarted every
stored set is refused as "sealed in an earlier enclave boot", dropped (counted in the metrics,
the host neither crashes nor loops), and the pool refills from a prime search; GG20 keys made
afterwards sign (checked with libsecp256k1 and EVM address recovery)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from grpc_health.v1 import health_pb2

from mpc.v1 import enclave_pb2 as epb
from signer.client.relay import Relay
from signer.link.client import EnclaveClient, parse_address
from tests.conftest import SignerProcess, free_port, wait_for
from tests.service.conftest import GG20, FixtureEnclave, Node, check_signature, dkg, message_for, sign
from tests.service.test_exchange import scrape

PARTIES = ("client", "signer-a")


class NeverEnclave(FixtureEnclave):
    """The fixture enclave whose own prime source never delivers (test harness switch)."""

    def start(self, timeout: float = 15.0) -> FixtureEnclave:
        os.environ["MPC_TEST_PRIME_SOURCE"] = "never"
        try:
            return super().start(timeout)
        finally:
            del os.environ["MPC_TEST_PRIME_SOURCE"]


def stored(node: Node) -> dict[str, bytes]:
    return {i: bytes(b) for i, b in node.raw_sql("SELECT id, sealed FROM preparams")}


async def import_directly(enclave: FixtureEnclave, blobs: dict[str, bytes]) -> epb.PreparamsImported:
    """The host's own move: the kept blobs straight to the enclave's socket."""
    client = EnclaveClient(parse_address(enclave.address), call_timeout=30.0)
    try:
        sealed = [epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_PREPARAMS, id=i, data=d) for i, d in blobs.items()]
        response = await client.call(epb.Request(preparams_import=epb.PreparamsImport(sealed=sealed)))
        return response.preparams_imported
    finally:
        await client.close()


async def test_stored_preparams_are_single_use_across_restarts(  # type: ignore[no-untyped-def]
    tmp_path, start_signer: Callable[..., SignerProcess], local, connect
) -> None:
    enclave = FixtureEnclave(f"unix://{tmp_path}/e.sock", tmp_path, extra_args=["--preparams-pool-size", "3"])
    enclave.prime_slice = 1
    enclave.start()
    url = f"sqlite:{tmp_path}/signer.db"
    port = free_port()
    signer = start_signer(
        enclave,
        {
            "server": {"node_id": "signer-a"},
            "storage": {"url": url},
            "enclave": {"preparams_sync_seconds": 0.3},
            "metrics": {"listen": f"127.0.0.1:{port}"},
        },
    )
    node = Node("signer-a", enclave, signer, url)
    burned = ("mpc_signer_single_use_burned_total", (("item", "preparams"),))
    try:
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        wait_for(lambda: len(stored(node)) == 3, 20, "3 stored pre-parameter sets")
        kept = stored(node)  # the host keeps copies
        assert all(len(i) == 32 and blob[:4] == b"MPCS" and b"boot-" in blob[:32] for i, blob in kept.items())

        relay = Relay({"client": local, "signer-a": connect(node)})
        key = await dkg(relay, GG20, PARTIES, 2)  # takes one pooled pair
        wait_for(lambda: not set(kept) <= set(stored(node)), 10, "the used set's stored copy deleted")
        (used,) = set(kept) - set(stored(node))

        # Same boot: the used set's blob, restored to the store or sent straight to the enclave.
        answer = await import_directly(enclave, {used: kept[used]})
        assert list(answer.imported_ids) == []
        assert [(r.id, r.code, r.message) for r in answer.refused] == [
            (used, epb.ERROR_CODE_FAILED_PRECONDITION, "pre-parameter set already used")
        ]

        enclave.kill()  # crash: the in-memory pool and the boot key are gone
        at_restart = len(stored(node))
        assert at_restart >= 2
        restarted = NeverEnclave(enclave.address, tmp_path, extra_args=["--preparams-pool-size", "3"])
        restarted.start()
        node.enclave = restarted
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        wait_for(lambda: len(stored(node)) == 0, 20, "stored sets handed over")
        wait_for(lambda: scrape(port).get(burned) == at_restart, 10, "burned sets counted")
        # After the restart: every kept blob (the used one too) refused, nothing added.
        answer = await import_directly(restarted, kept)
        assert list(answer.imported_ids) == [] and answer.ready == 0
        assert {r.id: r.code for r in answer.refused} == {i: epb.ERROR_CODE_SEALED_IN_EARLIER_BOOT for i in kept}
        assert all("sealed in an earlier enclave boot" in r.message for r in answer.refused)
        # The host noticed once and goes on serving: no crash, no loop, nothing stored again.
        before = signer.log().count("sealed in an earlier enclave boot dropped")
        wait_for(lambda: signer.health() == health_pb2.HealthCheckResponse.SERVING, 5, "serving")
        await asyncio.sleep(1.0)  # three more sync rounds
        assert signer.log().count("sealed in an earlier enclave boot dropped") == before == 1
        assert scrape(port).get(burned) == at_restart and len(stored(node)) == 0

        # A restart whose prime search works: the pool refills, keys are made and sign.
        restarted.kill()
        refilled = FixtureEnclave(enclave.address, tmp_path, extra_args=["--preparams-pool-size", "3"])
        refilled.prime_slice = 1
        refilled.start()
        node.enclave = refilled
        signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
        relay = Relay({"client": local, "signer-a": connect(node)})
        key2 = await dkg(relay, GG20, PARTIES, 2)
        assert key2.key_id != key.key_id
        message = message_for(GG20, b"made after the pool refilled")
        check_signature(GG20, key2.public_key, message, await sign(relay, GG20, PARTIES, key2.key_id, message))
    finally:
        signer.stop()
        node.enclave.stop()
