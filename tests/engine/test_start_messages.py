"""Engine: a SessionStart may carry the other parties' first messages (one request, not two)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nacl.signing import VerifyKey

from enclave.crypto.primes import FixtureSource
from enclave.errors import RequestRejected
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.conftest import FROST
from tests.engine.test_frost import PARTIES, frost_key


async def test_start_carries_the_first_messages(tmp_path: Path, prime_source: FixtureSource) -> None:
    """A start with the other party's first-round messages answers like a start followed by a
    delivery; a message that is not from another party refuses the whole start."""
    parties = PARTIES[:2]
    engines = relay.make_engines(parties, tmp_path, prime_source)
    try:
        res = await frost_key(engines, parties, 2)
        message = b"one request for start and first messages"
        first = relay.sign("s1", FROST, parties, "alice", res["alice"].sealed_share, message)
        alice = await engines["alice"].start(first)
        assert alice.state == relay.RUNNING and [m.round for m in alice.outgoing] == [1]

        bad = relay.sign("s1", FROST, parties, "bob", res["bob"].sealed_share, message)
        bad.messages.extend([pb.EnclaveMessage(sender="carol", round=1, payload=alice.outgoing[0].payload)])
        with pytest.raises(RequestRejected) as exc:
            await engines["bob"].start(bad)
        assert exc.value.code == pb.ERROR_CODE_INVALID_ARGUMENT and "'carol'" in exc.value.message
        assert engines["bob"].running() == 0

        start = relay.sign("s1", FROST, parties, "bob", res["bob"].sealed_share, message)
        start.messages.extend(alice.outgoing)
        bob = await engines["bob"].start(start)
        # bob's commitments and, having alice's already, his signature share
        assert bob.state == relay.RUNNING and [m.round for m in bob.outgoing] == [1, 2]
        alice_done = await engines["alice"].deliver(pb.SessionDeliver(session_id="s1", messages=bob.outgoing))
        assert alice_done.state == relay.DONE
        bob_done = await engines["bob"].deliver(
            pb.SessionDeliver(session_id="s1", messages=[m for m in alice_done.outgoing if m.round == 2])
        )
        assert bob_done.state == relay.DONE and bob_done.result.signature == alice_done.result.signature
        VerifyKey(res["alice"].public_key).verify(message, bob_done.result.signature)
    finally:
        for e in engines.values():
            e.close()
