"""Sessions: the background sweep (deadline -> FAILED and an abort in the enclave; eviction after
retention), the prepare hook, and starts that carry the first incoming messages. Same toy engine
and real channel as test_sessions."""

from __future__ import annotations

import asyncio

import pytest

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.errors import InvalidArgument, NotFound
from signer.sessions import convert
from signer.sessions.registry import DEADLINE_REASON, Sessions
from signer.sessions.retention import FinishedSessions
from tests.signer.test_sessions import KEYS, channel, dkg, incoming

__all__ = ["channel"]  # the fixture, imported for use here


def make(client, **kw) -> Sessions:  # type: ignore[no-untyped-def]
    async def persist(session, result) -> None:  # type: ignore[no-untyped-def]
        return None

    retained = FinishedSessions(max_age=kw.get("retention", 60), max_count=10_000, max_bytes=1 << 25)
    return Sessions(
        client, KEYS, deadline_seconds=kw.get("deadline", 60), max_concurrent=10, retained=retained, persist=persist
    )


async def test_sweep_fails_overdue_sessions_aborts_them_and_evicts_old_ones(channel) -> None:  # type: ignore[no-untyped-def]
    engine, client = channel
    sessions = make(client, deadline=0.2, retention=0.3)
    request = dkg("late")
    await sessions.start(convert.dkg_start(request), convert.fingerprint(request))
    assert sessions.sweep() == 0 and sessions.running == 1
    await asyncio.sleep(0.3)
    assert sessions.sweep() == 1 and sessions.running == 0
    session = sessions.get("late", epb.SESSION_KIND_DKG)
    assert session.state == pb.SESSION_STATE_FAILED and session.reason == DEADLINE_REASON
    await sessions.close()  # the abort reached the enclave
    assert "late" not in engine.sessions
    await asyncio.sleep(0.35)
    sessions.sweep()
    with pytest.raises(NotFound):
        sessions.get("late", epb.SESSION_KIND_DKG)
    assert len(sessions) == 0


async def test_run_sweeper_in_the_background(channel) -> None:  # type: ignore[no-untyped-def]
    _engine, client = channel
    sessions = make(client, deadline=0.1)
    request = dkg("bg")
    await sessions.start(convert.dkg_start(request), convert.fingerprint(request))
    task = asyncio.create_task(sessions.run_sweeper(0.05))
    await asyncio.sleep(0.3)
    task.cancel()
    record = sessions.retained.get("bg")  # no lookup needed to notice
    assert record is not None and record.state == pb.SESSION_STATE_FAILED


async def test_failed_prepare_leaves_nothing(channel) -> None:  # type: ignore[no-untyped-def]
    engine, client = channel
    sessions = make(client)

    async def refuse(session) -> None:  # type: ignore[no-untyped-def]
        raise NotFound("key is not known")

    request = dkg("prep")
    with pytest.raises(NotFound):
        await sessions.start(convert.dkg_start(request), convert.fingerprint(request), prepare=refuse)
    assert len(sessions) == 0 and sessions.running == 0 and "prep" not in engine.sessions


async def test_start_with_incoming_messages(channel) -> None:  # type: ignore[no-untyped-def]
    _engine, client = channel
    sessions = make(client)
    request = dkg("early")
    first = incoming("early", 1, b"share")
    session, outgoing = await sessions.start(convert.dkg_start(request), convert.fingerprint(request), messages=[first])
    # the start's broadcast, then the reply to the delivered message, in sequence
    assert [(m.recipient, m.round, m.seq) for m in outgoing] == [("", 1, 1), ("client", 2, 2)]
    with pytest.raises(InvalidArgument, match="session being started"):
        other = dkg("other")
        await sessions.start(convert.dkg_start(other), convert.fingerprint(other), messages=[first])
    assert session.state == pb.SESSION_STATE_RUNNING
