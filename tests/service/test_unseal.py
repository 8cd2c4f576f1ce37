"""t-of-n unseal through real processes: an enclave started with --sealing-shares, a signer over
mTLS in front of it, and the operator CLI (`mpc-signer unseal-init | unseal | rekey`) as a
subprocess talking to the enclave's socket, exactly as README "Unsealing" has an operator do it.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from enclave.unseal import shares as codec
from enclave.unseal.unsealer import Unsealer
from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from tests.conftest import REPO, EnclaveProcess, SignerProcess, wait_for
from tests.service.conftest import FROST, GG20, check_signature, dkg, message_for, sign, status_of

PARTIES = ("client", "signer-a")
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


class SharesEnclave(EnclaveProcess):
    """The enclave in shares mode (tests.service.unseal_fixture: fixture primes, optional pause)."""

    env: dict[str, str]

    def start(self, timeout: float = 15.0) -> SharesEnclave:
        args = [
            sys.executable,
            "-m",
            "tests.service.unseal_fixture",
            "--listen",
            self.address,
            "--sealing-shares",
            str(self.workdir / "shares.json"),
        ]
        env = {**os.environ, "MPC_TEST_PRIME_SLICE": "1", **getattr(self, "env", {})}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log, env=env)
        wait_for(lambda: self.accepting() or self.proc.poll() is not None, timeout, f"enclave on {self.address}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"enclave exited with {self.proc.returncode}: {self.log()}")
        return self


@dataclass
class SharesNode:
    enclave: SharesEnclave
    signer: SignerProcess

    @property
    def target(self) -> str:
        return self.signer.target

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "signer.cli", *args, "--config", str(self.signer.config_path)],
            cwd=REPO,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("MPC_SIGNER_")},
        )

    def status(self) -> dict[str, Any]:
        done = self.cli("unseal-status")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    def new_set(self, *args: str, stdin: str | None = None) -> list[str]:
        done = self.cli(*args, "--json", stdin=stdin)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["shares"]  # type: ignore[no-any-return]

    def unseal(self, share: str) -> subprocess.CompletedProcess[str]:
        return self.cli("unseal", "--share-file", "-", stdin=share + "\n")

    def restart_enclave(self, **env: str) -> None:
        self.enclave.kill()
        self.enclave.env = env
        self.enclave.start()
        self.signer.wait_health(NOT_SERVING, timeout=10)
        wait_for(lambda: self.ping_state() == pb.ENCLAVE_STATE_SEALED, 10, "the signer to reach the new enclave")

    def wait_serving(self) -> None:
        self.signer.wait_health(SERVING, timeout=10)

    def ping_state(self) -> int:
        with self.signer.channel() as channel:
            return self.signer.stub(channel).Ping(pb.PingRequest(), timeout=5).enclave_state  # type: ignore[no-any-return]

    def start_dkg(self) -> grpc.RpcError:
        request = pb.StartDKGRequest(
            session_id=f"sealed-{os.urandom(4).hex()}",
            protocol=FROST,
            threshold=2,
            party_ids=list(PARTIES),
            self_party_id="signer-a",
        )
        with self.signer.channel() as channel, pytest.raises(grpc.RpcError) as err:
            self.signer.stub(channel).StartDKG(request, metadata=self.signer.auth(), timeout=5)
        return err.value


@pytest.fixture
def shares_node(
    tmp_path_factory: pytest.TempPathFactory, start_signer: Callable[..., SignerProcess]
) -> Iterator[Callable[[], SharesNode]]:
    made: list[SharesNode] = []

    def make() -> SharesNode:
        workdir = tmp_path_factory.mktemp("shares-node")
        enclave = SharesEnclave(f"unix://{workdir}/e.sock", workdir)
        enclave.start()
        signer = start_signer(
            enclave, {"server": {"node_id": "signer-a"}, "storage": {"url": f"sqlite:{workdir}/signer.db"}}
        )
        node = SharesNode(enclave, signer)
        made.append(node)
        return node

    yield make
    for node in made:
        node.signer.stop()
        node.enclave.stop()


def refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "refused" in done.stderr and all(w in done.stderr for w in words), done.stderr


async def sign_both(node: SharesNode, local: Any, connect: Any, keys: dict[int, pb.DKGResult], text: bytes) -> None:
    relay = Relay({"client": local, "signer-a": connect(node)})
    for protocol, key in keys.items():
        message = message_for(protocol, text)
        check_signature(protocol, key.public_key, message, await sign(relay, protocol, PARTIES, key.key_id, message))


async def test_a_node_starts_sealed_and_two_operators_unseal_it(shares_node, local, connect, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = shares_node()
    node.signer.wait_health(NOT_SERVING)
    assert node.ping_state() == pb.ENCLAVE_STATE_SEALED
    err = node.start_dkg()
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "node is sealed" in (err.details() or "") and "unseal-init" in (err.details() or "")
    assert node.status() == {"initialized": False, "message": "", "sealed": True}

    shares = node.new_set("unseal-init", "--shares", "3", "--threshold", "2")
    assert len(shares) == 3 and len({codec.decode(s).set_id for s in shares}) == 1
    status = node.status()
    assert status["sealed"] and status["current"]["threshold"] == 2 and status["current"]["shares"] == 3

    node.restart_enclave()  # sealed again; nothing of the init's boot remains
    assert node.unseal(shares[1]).returncode == 0
    assert node.status()["current"]["entered"] == 1
    err = node.start_dkg()  # T-1 shares: still sealed, and the refusal says how far it got
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "node is sealed: 1 of 2" in (err.details() or "")
    assert node.ping_state() == pb.ENCLAVE_STATE_SEALED and node.signer.health() == NOT_SERVING

    # A share of another set (another node's), a corrupted one, a repeated one: refused, count nothing.
    other = Unsealer(tmp_path / "other-node.json")
    foreign = codec.encode((await other.init(3, 2))[1])
    refused(node.unseal(foreign), "share of set", "another node")
    corrupted = shares[0][:-2] + ("A" if shares[0][-2] != "A" else "B") + shares[0][-1]
    refused(node.unseal(corrupted), "checksum")
    refused(node.unseal(shares[1]), "already entered")
    refused(node.unseal("not a share at all"), "not an operator share")
    assert node.status()["current"]["entered"] == 1 and node.status()["sealed"]

    done = node.unseal(shares[2])
    assert done.returncode == 0 and "unsealed with 2 shares" in done.stderr
    node.wait_serving()
    assert node.ping_state() == pb.ENCLAVE_STATE_READY
    refused(node.unseal(shares[0]), "already unsealed")

    relay = Relay({"client": local, "signer-a": connect(node)})
    keys = {protocol: await dkg(relay, protocol, PARTIES, 2) for protocol in (FROST, GG20)}
    await sign_both(node, local, connect, keys, b"unsealed by two operators")

    node.restart_enclave()  # a restart forgets the progress: sealed, and signing is refused
    with pytest.raises(grpc.aio.AioRpcError) as refusal:
        await sign(Relay({"client": local, "signer-a": connect(node)}), FROST, PARTIES, keys[FROST].key_id, b"x")
    assert refusal.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "node is sealed" in (refusal.value.details() or "")
    code, message = await status_of(connect(node).validate_key(keys[GG20].key_id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "node is sealed: 0 of 2" in message
    for share in (shares[0], shares[1]):
        assert node.unseal(share).returncode == 0
    node.wait_serving()
    await sign_both(node, local, connect, keys, b"after a restart")


def test_exactly_threshold_shares_in_any_order_unseal(shares_node) -> None:  # type: ignore[no-untyped-def]
    node = shares_node()
    shares = node.new_set("unseal-init", "--shares", "3", "--threshold", "2")
    for first, second in itertools.permutations(range(3), 2):
        node.restart_enclave()
        assert node.unseal(shares[first]).returncode == 0
        assert node.status()["sealed"]
        assert node.unseal(shares[second]).returncode == 0
        node.wait_serving()
        assert not node.status()["sealed"]


async def test_rekey_to_another_size_retires_the_old_set_and_keys_still_sign(shares_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    node = shares_node()
    old = node.new_set("unseal-init", "--shares", "3", "--threshold", "2")
    for share in old[:2]:
        assert node.unseal(share).returncode == 0
    node.wait_serving()
    relay = Relay({"client": local, "signer-a": connect(node)})
    keys = {protocol: await dkg(relay, protocol, PARTIES, 2) for protocol in (FROST, GG20)}

    short = node.cli("rekey", "--shares", "4", "--threshold", "3", "--share-file", "-", stdin=old[0] + "\n")
    assert short.returncode == 2 and "2 share(s) needed, 1 found" in short.stderr
    new = node.new_set("rekey", "--shares", "4", "--threshold", "3", "--share-file", "-", stdin=f"{old[2]}\n{old[1]}\n")
    assert len(new) == 4
    status = node.status()
    assert status["pending"]["shares"] == 4 and status["pending"]["threshold"] == 3 and not status["sealed"]
    await sign_both(node, local, connect, keys, b"while the new set is pending")

    wrong = node.cli("rekey", "--verify", "--share-file", "-", stdin="\n".join(old) + "\n")
    refused(wrong, "cannot use")
    done = node.cli("rekey", "--verify", "--share-file", "-", stdin="\n".join(new[1:]) + "\n")
    assert done.returncode == 0 and "is now the current set" in done.stderr
    status = node.status()
    assert "pending" not in status and status["current"]["shares"] == 4

    node.restart_enclave()
    refused(node.unseal(old[0]), "replaced by a rekey")
    for share in (new[3], new[0]):
        assert node.unseal(share).returncode == 0
    assert node.status()["sealed"]  # 2 of 3: the new threshold holds
    assert node.unseal(new[2]).returncode == 0
    node.wait_serving()
    await sign_both(node, local, connect, keys, b"after the rekey")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_mid_rekey_leaves_a_set_that_unseals(shares_node, when: str) -> None:  # type: ignore[no-untyped-def]
    node = shares_node()
    marker = node.enclave.workdir / "paused"
    old = node.new_set("unseal-init", "--shares", "2", "--threshold", "2")
    node.restart_enclave(MPC_TEST_PAUSE_COMMIT=when, MPC_TEST_PAUSE_MARKER=str(marker))
    for share in old:
        assert node.unseal(share).returncode == 0
    share_file = node.enclave.workdir / "operators-at-the-terminal"
    share_file.write_text("\n".join(old) + "\n")
    rekey = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signer.cli",
            "rekey",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--share-file",
            str(share_file),
            "--json",
            "--timeout",
            "60",
            "--config",
            str(node.signer.config_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(marker.exists, 30, f"the rekey to pause {when} its rename")
    node.enclave.kill()  # SIGKILL in the middle of the rekey
    out, err = rekey.communicate(timeout=30)
    assert rekey.returncode == 1 and not out, (out, err)  # the operator got no new shares

    node.restart_enclave()
    status = node.status()
    if when == "before":  # the new file was written but not in place: the old set alone
        assert "pending" not in status
    else:  # in place: both sets, and the old one still unseals (its new shares never left)
        assert status["pending"]["shares"] == 3
    assert not [p for p in node.enclave.workdir.iterdir() if ".tmp-" in p.name]
    for share in old:
        assert node.unseal(share).returncode == 0
    node.wait_serving()

    # And the operators simply rekey again (a pending set left behind is replaced).
    new = node.new_set("rekey", "--shares", "3", "--threshold", "2", "--share-file", "-", stdin="\n".join(old) + "\n")
    done = node.cli("rekey", "--verify", "--share-file", "-", stdin=f"{new[0]}\n{new[2]}\n")
    assert done.returncode == 0, done.stderr
    node.restart_enclave()
    refused(node.unseal(old[0]), "replaced by a rekey")
    assert node.unseal(new[1]).returncode == 0 and node.unseal(new[2]).returncode == 0
    node.wait_serving()


def test_shares_mode_refuses_kms_and_other_metadata_at_start(tmp_path: Path) -> None:
    from enclave.sealing import generate_key_file

    generate_key_file(tmp_path / "key")
    base = [sys.executable, "-m", "enclave", "--listen", f"unix://{tmp_path}/e.sock"]
    cases = [
        (["--sealing-shares", str(tmp_path / "s.json"), "--kms-key-id", "arn:aws:kms:eu-west-1:1:key/x"], "kms-key-id"),
        (["--sealing-shares", str(tmp_path / "key.meta.json")], "not a share file"),
    ]
    for extra, expected in cases:
        done = subprocess.run([*base, *extra], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2 and expected in done.stderr, done.stderr
