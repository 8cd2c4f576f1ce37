"""Fixtures of the fuzz tests: one signer node (real enclave process, real host over mTLS) for a
module, and an event loop of the module's own that Hypothesis examples run on.

MPC_FUZZ_EXAMPLES (`make fuzz`): examples per protocol round, scaled down by each target's cost;
unset, every target runs the few examples `make test` affords.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest

from signer.auth.envelope import HmacKeyRing
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.ops.devcerts import DevCertPaths
from tests.service.conftest import Node, ring, start_node  # noqa: F401 (re-exported fixtures)
from tests.service.fixture_enclave import prime_slice

T = TypeVar("T")
FUZZ_EXAMPLES = int(os.environ.get("MPC_FUZZ_EXAMPLES", "0"))
# Sessions a mutated message left waiting (a message queued for a round that never comes) end
# at this deadline, so they do not pile up over thousands of examples.
DEADLINE_SECONDS = 10.0


def examples(in_make_test: int, cost: int = 1) -> int:
    """How many examples a target runs: `in_make_test`, or MPC_FUZZ_EXAMPLES / cost if larger."""
    return max(in_make_test, FUZZ_EXAMPLES // cost) if FUZZ_EXAMPLES else in_make_test


@dataclass
class Fuzzing:
    """The node under test and this module's loop, client and local party."""

    node: Node
    loop: asyncio.AbstractEventLoop
    client: SignerClient
    local: LocalNode
    ring: HmacKeyRing

    def run(self, call: Awaitable[T]) -> T:
        return self.loop.run_until_complete(call)

    def alive(self) -> bool:
        return self.node.enclave.alive() and self.node.signer.proc is not None and self.node.signer.proc.poll() is None


@pytest.fixture(scope="module")
def fuzzing(start_node: Callable[..., Node], dev_certs: DevCertPaths, ring: HmacKeyRing) -> Iterator[Fuzzing]:  # noqa: F811
    node = start_node("fuzz", sessions={"deadline_seconds": DEADLINE_SECONDS})
    loop = asyncio.new_event_loop()

    async def connect() -> tuple[SignerClient, LocalNode]:
        client = SignerClient.connect(
            node.target,
            ca=dev_certs.ca,
            cert=dev_certs.client_cert,
            key=dev_certs.client_key,
            hmac=ring,
            token_key=dev_certs.jwt_key,
            exchange=True,
        )
        return client, LocalNode(ring, prime_source=prime_slice(0))

    client, local = loop.run_until_complete(connect())
    yield Fuzzing(node, loop, client, local, ring)

    async def close() -> None:
        await client.close()
        await local.close()

    loop.run_until_complete(close())
    loop.close()


def no_traceback(node: Node) -> None:
    """Neither process logged an unexpected exception."""
    for name, text in (("enclave", node.enclave.log()), ("signer", node.signer.log())):
        assert "Traceback" not in text, f"{name} log:\n{text[-4000:]}"
