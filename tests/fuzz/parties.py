"""A local party whose message of one round is replaced by a mutated one, validly HMAC'd.

`MutatingNode(node, ring, round, index, mutations)` stands for the caller's `LocalNode` in a
relay: the party behaves honestly except that the `index`-th (modulo their number) message it
sends in `round` is mutated, then signed with the caller's HMAC key, so that what the signer
receives passes authentication and reaches the enclave's round code as an honest message would.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.local import LocalNode, LocalParty
from signer.client.spec import Outcome, SessionSpec
from tests.fuzz.mutations import Mutation


class MutatingParty:
    remote = False

    def __init__(self, inner: LocalParty, owner: MutatingNode) -> None:
        self.inner, self.owner = inner, owner
        self.party_id = inner.party_id
        self.outcome: Outcome = inner.outcome  # the same object: the local party updates it in place

    async def start(self, spec: SessionSpec, initial: Sequence[pb.ProtocolMessage] = ()) -> list[pb.ProtocolMessage]:
        return self.owner.tamper(await self.inner.start(spec, initial))

    async def deliver(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        return self.owner.tamper(await self.inner.deliver(messages))

    async def refresh(self) -> Outcome:
        return await self.inner.refresh()

    async def abort(self, reason: str) -> None:
        await self.inner.abort(reason)


class MutatingNode:
    def __init__(
        self, node: LocalNode, ring: HmacKeyRing, round_no: int, index: int, mutations: Sequence[Mutation]
    ) -> None:
        self.node, self.ring = node, ring
        self.round_no, self.index, self.mutations = round_no, index, mutations
        self.sent: pb.ProtocolMessage | None = None  # the mutated message, once sent
        self.original: pb.ProtocolMessage | None = None
        self.parties: list[MutatingParty] = []

    def party(self, party_id: str) -> MutatingParty:
        party = MutatingParty(self.node.party(party_id), self)
        self.parties.append(party)
        return party

    def tamper(self, messages: list[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        if self.sent is not None:
            return messages
        of_round = [i for i, m in enumerate(messages) if m.round == self.round_no]
        if not of_round:
            return messages
        i = of_round[self.index % len(of_round)]
        original = messages[i]
        mutated = pb.ProtocolMessage()
        mutated.CopyFrom(original)
        for mutation in self.mutations:
            mutation.apply(mutated)
        self.ring.sign(mutated)
        self.original, self.sent = original, mutated
        return [*messages[:i], mutated, *messages[i + 1 :]]

    @property
    def changed(self) -> bool:
        """Whether the message sent differs from the honest one (a mutation may be a no-op)."""
        if self.sent is None or self.original is None:
            return False
        a, b = pb.ProtocolMessage(), pb.ProtocolMessage()
        a.CopyFrom(self.sent)
        b.CopyFrom(self.original)
        a.ClearField("hmac")
        b.ClearField("hmac")
        return a.SerializeToString(deterministic=True) != b.SerializeToString(deterministic=True)

    async def abort_all(self) -> None:
        """Drop this party's session in the local engine if it still runs (the signer refused)."""
        for party in self.parties:
            await party.abort("fuzz example over")
