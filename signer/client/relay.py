"""A relay: runs one session among local parties and signer nodes by carrying their messages.

What mpc-service does in production, in a few lines: start the session on every party, then
repeatedly deliver each party's outgoing messages to their recipients (a message with an empty
recipient is a broadcast to every other party) until no message is left in flight, and read
each party's outcome. Messages for one recipient are delivered in one call per wave, in the
order they were sent, so per-sender sequence numbers stay increasing. The relay sees only
HMAC'd envelopes and opaque payloads; it needs no secret of any party.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import grpc

from mpc.v1 import signer_pb2 as pb
from signer.client.spec import Outcome, SessionSpec

MAX_BATCH = 64  # signer.sessions.convert.MAX_MESSAGES_PER_SUBMIT
T = TypeVar("T")


class Party(Protocol):
    party_id: str
    outcome: Outcome
    # A signer node (True) or a party in this process (False).
    remote: bool

    async def start(
        self, spec: SessionSpec, initial: Sequence[pb.ProtocolMessage] = ()
    ) -> list[pb.ProtocolMessage]: ...

    async def deliver(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]: ...

    async def refresh(self) -> Outcome: ...

    async def abort(self, reason: str) -> None: ...


class Node(Protocol):
    """Something that can take part in sessions: a `LocalNode` or a `SignerClient`."""

    def party(self, party_id: str) -> Party: ...

    async def identity_key(self) -> bytes:
        """The P-256 key that signs this node's round-one message as a party new to a key (reshare)
        or as a repaired party."""
        ...


async def _all(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """`asyncio.gather` of the calls, without its tasks when there is only one (the common case
    of a 2-party session, where each step talks to one party)."""
    if len(calls) == 1:
        return [await calls[0]]
    return list(await asyncio.gather(*calls))


class RelayError(Exception):
    """The session could not be relayed to completion (timeout, unroutable message)."""


class Relay:
    """Routes sessions among nodes: `Relay({"client": local_node, "signer-1": client, ...})`, the
    keys being the party ids the nodes have in the sessions this relay runs."""

    def __init__(self, nodes: Mapping[str, Node]) -> None:
        self.nodes = dict(nodes)

    async def run(self, spec: SessionSpec, timeout: float = 60.0) -> dict[str, Outcome]:
        """Relay `spec` among its parties until every one has finished; per-party outcomes. For a
        reshare without new_party_keys, the relay asks each new party's node for its identity key
        first (`Node.identity_key`); for a repair, the repaired party's node."""
        missing = set(spec.session_parties) - set(self.nodes)
        if missing:
            raise ValueError(f"no node for parties {sorted(missing)}")
        if spec.kind in ("reshare", "repair") and not spec.new_party_keys:
            spec = dataclasses.replace(spec, new_party_keys=await self.new_party_keys(spec))
        parties = [self.nodes[p].party(p) for p in spec.session_parties]
        by_id = {p.party_id: p for p in parties}
        local = {p.party_id: p for p in parties if not p.remote}
        try:
            async with asyncio.timeout(timeout):
                # Parties in this process start first; a signer's start then carries the messages
                # they address to it, which saves one round trip per session.
                local_out = [m for out in await _all([p.start(spec) for p in local.values()]) for m in out]
                routed = self._route(local_out, by_id)
                # (A start takes at most MAX_BATCH messages; more go the usual way.)
                initial = {pid: msgs for pid, msgs in routed.items() if pid not in local and len(msgs) <= MAX_BATCH}
                remote_out = await _all([p.start(spec, initial.get(p.party_id, [])) for p in parties if p.remote])
                inbox = {pid: msgs for pid, msgs in routed.items() if pid not in initial}
                for pid, msgs in self._route([m for out in remote_out for m in out], by_id).items():
                    inbox.setdefault(pid, []).extend(msgs)
                while inbox:
                    waves = await _all([self._deliver(by_id[pid], msgs) for pid, msgs in inbox.items()])
                    inbox = self._route([m for out in waves for m in out], by_id)
                await _all(
                    [
                        p.refresh()
                        for p in parties
                        if not p.outcome.finished or (p.outcome.ok and p.outcome.result is None)
                    ]
                )
        except BaseException as exc:
            # Local parties drop the session's secrets now rather than at their deadline; signer
            # nodes do the same at theirs.
            await asyncio.gather(
                *(p.abort("the relay gave up on the session") for p in local.values()), return_exceptions=True
            )
            if isinstance(exc, TimeoutError):
                raise RelayError(f"session {spec.session_id} did not finish within {timeout}s") from None
            raise
        return {p.party_id: p.outcome for p in parties}

    async def new_party_keys(self, spec: SessionSpec) -> dict[str, bytes]:
        """The identity key of every new party of a reshare that deals nothing (of the repaired
        party of a repair), from its node. Whoever runs the relay decides who a new party is:
        without a signing policy, nothing else vouches that a key belongs to the party it is
        listed for (README "Reshare (recovery)")."""
        if spec.kind == "repair":
            new = [spec.repair_party_id]
        else:
            new = [p for p in spec.party_ids if p not in spec.source_signers]
        keys = await _all([self.nodes[p].identity_key() for p in new])
        return dict(zip(new, keys, strict=True))

    @staticmethod
    def _route(
        messages: Sequence[pb.ProtocolMessage], parties: Mapping[str, Party]
    ) -> dict[str, list[pb.ProtocolMessage]]:
        inbox: dict[str, list[pb.ProtocolMessage]] = {}
        for m in messages:
            if m.recipient:
                if m.recipient not in parties:
                    raise RelayError(f"message from {m.sender} to unknown party {m.recipient}")
                targets = [m.recipient]
            else:
                targets = [p for p in parties if p != m.sender]
            for t in targets:
                if not parties[t].outcome.finished:
                    inbox.setdefault(t, []).append(m)
        return inbox

    @staticmethod
    async def _deliver(party: Party, messages: list[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        out: list[pb.ProtocolMessage] = []
        for i in range(0, len(messages), MAX_BATCH):
            if party.outcome.finished:
                break
            try:
                out += await party.deliver(messages[i : i + MAX_BATCH])
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                await party.refresh()  # the session had finished (failed) there: read why
        return out
