"""A local party: the caller's own share of a key, run in the caller's process.

`LocalNode` instantiates the enclave's session engine in this process with its own sealer (a
fresh random key-encryption key, or one the caller loads) and keeps its sealed key shares and
presignatures in a small in-memory store; `LocalNode.party(party_id)` gives the party object
of one relayed session (see `signer.client.relay`). It is the same protocol library the signer
nodes run inside their enclaves, so a Python caller can be P1 of a 2-of-2 or 2-of-3 key.

Messages are wrapped in the same HMAC'd envelopes the signer uses (the caller's HMAC key ring,
per-session sequence numbers), and messages from the signers are checked (HMAC, strictly
increasing sequence numbers) before the engine sees them.

What is and is not protected: this is not an enclave. The caller's share lives sealed in this
process's memory (`export_keys` hands out the sealed blobs to persist) and in plaintext while a
session runs; protect the process accordingly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from enclave.crypto.primes import PrimeSource
from enclave.crypto.rng import SYSTEM_RNG
from enclave.engine import Engine, EngineConfig
from enclave.errors import RequestRejected
from enclave.sealing import KEK_LEN, LocalSealer, Sealer
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.auth.replay import SenderSequences
from signer.client.spec import Outcome, SessionSpec
from signer.errors import FailedPrecondition, InvalidArgument, NotFound
from signer.sessions import convert


@dataclass
class LocalKey:
    key_id: str
    protocol: int  # mpc.v1.Protocol
    party_ids: tuple[str, ...]
    threshold: int
    public_key: bytes
    chain_code: bytes
    sealed_share: bytes = field(repr=False)
    predecessor_key_id: str = ""  # the key a refresh or reshare made this one from


class LocalNode:
    """The caller's engine, sealer and sealed blobs; shared by every session it takes part in.

    One party per session: the engine knows a session by its id, so a second party of the same
    session on this node is refused ("already exists"); give each such party its own node."""

    def __init__(
        self,
        hmac: HmacKeyRing,
        *,
        sealer: Sealer | None = None,
        prime_source: PrimeSource | None = None,
        config: EngineConfig | None = None,
        deal_without_policy: bool = False,
    ) -> None:
        """`sealer`: default, a fresh random key-encryption key held only by this object (the
        sealed blobs are then useless once it is gone). `prime_source`: where GG20 Paillier
        pre-parameters come from (default: generated here, which takes CPU time).
        `deal_without_policy` (with the default config): deal in a reshare with no policy, the
        enclave's --allow-reshare-without-policy (README "Reshare (recovery)")."""
        self.hmac = hmac
        self.sealer = sealer if sealer is not None else LocalSealer(SYSTEM_RNG.random_bytes(KEK_LEN))
        # This node's identity key: a reshare lists `identity_public_key` in new_party_keys for a
        # local party new to the key, which signs its round-one message with it.
        self._identity = EnclaveIdentity.generate()
        self.engine = Engine(
            self.sealer,
            config=config or EngineConfig(preparams_pool_size=1, allow_reshare_without_policy=deal_without_policy),
            prime_source=prime_source,
            identity=self._identity,
        )
        self.keys: dict[str, LocalKey] = {}
        # key id -> presignature id -> sealed blob; popped (consumed) before use
        self.presignatures: dict[str, dict[str, bytes]] = {}

    @property
    def identity_public_key(self) -> bytes:
        """The P-256 key (SEC1 uncompressed, 65 bytes) this node's parties sign a reshare's round
        one with, when listed in new_party_keys; new for every node object."""
        return self._identity.public_key

    def party(self, party_id: str) -> LocalParty:
        return LocalParty(self, party_id)

    async def identity_key(self) -> bytes:
        """The key that signs this party's round-one message as a party new to a key (reshare)."""
        key: bytes | None = getattr(self, "identity_public_key", None)
        if not key:
            raise FailedPrecondition("this LocalNode has no identity key, so it cannot join a reshare as a new party")
        return key

    def retire_key(self, key_id: str) -> None:
        """Forget this party's share of `key_id` and its presignatures (after a refresh or a
        reshare, once every party holds the successor: README "Refresh"). The caller also drops any copy it
        exported: a kept sealed blob stays a valid share of the old sharing."""
        if key_id not in self.keys:
            raise NotFound(f"key {key_id} is not held by this local party")
        if not any(k.predecessor_key_id == key_id for k in self.keys.values()):
            raise FailedPrecondition(f"key {key_id} has no successor held here; retiring it would lose the key")
        del self.keys[key_id]
        self.presignatures.pop(key_id, None)

    def available_presignatures(self, key_id: str) -> list[str]:
        return list(self.presignatures.get(key_id, {}))

    async def close(self) -> None:
        self.engine.close()


class LocalParty:
    """This process's party in one session (the relay's party interface)."""

    def __init__(self, node: LocalNode, party_id: str) -> None:
        self.node = node
        self.party_id = party_id
        self.outcome = Outcome(party_id)
        self._start: epb.SessionStart | None = None
        self._seq = 1
        self._sequences = SenderSequences()  # the session's replay state, gone with this party

    remote = False

    async def start(self, spec: SessionSpec, initial: Sequence[pb.ProtocolMessage] = ()) -> list[pb.ProtocolMessage]:
        try:
            self.node.hmac.check_own_party(self.party_id)
        except ValueError as exc:
            raise FailedPrecondition(f"local party: {exc}; its messages would be refused") from None
        start = self._session_start(spec)
        self._start = start
        # Messages that came with the start go in with it, as a signer node does.
        start.messages.extend(self._accept(initial))
        try:
            update = await self.node.engine.start(start)
        except BaseException as exc:
            # Nothing started: the messages were not used, so a retried start may bring them again.
            self._sequences = SenderSequences()
            if isinstance(exc, RequestRejected):
                raise FailedPrecondition(f"local party: {exc.message}") from None
            raise
        finally:
            del start.sealed_blobs[:]
            del start.messages[:]
        return self._apply(update)

    async def deliver(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        assert self._start is not None
        if self.outcome.finished:
            raise FailedPrecondition("the session has already finished")
        deliver = epb.SessionDeliver(session_id=self._start.session_id, messages=self._accept(messages))
        return self._apply(await self.node.engine.deliver(deliver))

    def _accept(self, messages: Sequence[pb.ProtocolMessage]) -> list[epb.EnclaveMessage]:
        """Authenticity (HMAC), routing and freshness of incoming messages, all or nothing."""
        assert self._start is not None
        if not messages:
            return []
        self.node.hmac.verify_all(messages)
        for index, m in enumerate(messages):
            if m.session_id != self._start.session_id:
                raise InvalidArgument(f"messages[{index}]: another session")
        convert.check_routing(messages, convert.session_parties(self._start), self.party_id)
        self._sequences.accept(messages)
        return convert.to_enclave_messages(messages)

    async def refresh(self) -> Outcome:
        return self.outcome

    async def abort(self, reason: str) -> None:
        """Drop this party's session (and its secrets) in the local engine, if it still runs."""
        if self._start is None or self.outcome.finished:
            return
        try:
            update = await self.node.engine.abort(epb.SessionAbort(session_id=self._start.session_id, reason=reason))
        except RequestRejected:
            return
        self._apply(update)

    def _session_start(self, spec: SessionSpec) -> epb.SessionStart:
        me = self.party_id
        if spec.kind == "dkg":
            return convert.dkg_start(spec.dkg_request(me))
        if spec.kind == "reshare":
            return self._reshare_start(spec)
        if spec.kind == "repair":
            return self._repair_start(spec)
        key = self.node.keys.get(spec.key_id)
        if key is None:
            raise NotFound(f"key {spec.key_id} is not held by this local party")
        if spec.kind == "refresh":
            start = convert.refresh_start(spec.refresh_request(me))
            if tuple(start.party_ids) != key.party_ids or start.threshold not in (0, key.threshold):
                raise InvalidArgument("local party: a refresh keeps the key's ordered party set and threshold")
            start.threshold = key.threshold
        elif spec.kind == "presign":
            start = convert.presign_start(spec.presign_request(me))
        else:
            request = spec.sign_request(me)
            # This party's result stays in the caller's process: nothing to seal for it.
            request.ClearField("result_recipient_key")
            start = convert.sign_start(request)
        start.sealed_blobs.append(
            epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
        )
        if spec.kind == "sign" and spec.presignature_id:
            blob = self.node.presignatures.get(spec.key_id, {}).pop(spec.presignature_id, None)  # consumed here
            if blob is None:
                raise FailedPrecondition(f"presignature {spec.presignature_id} is not available locally")
            kind = convert.presignature_kind(start.protocol)
            start.sealed_blobs.append(epb.SealedBlob(kind=kind, id=spec.presignature_id, data=blob))
        return start

    def _reshare_start(self, spec: SessionSpec) -> epb.SessionStart:
        """A dealer brings its share; a party that holds the source key here fills what the spec
        left out from it; a party new to the key needs the spec to describe it (as on a node)."""
        start = convert.reshare_start(spec.reshare_request(self.party_id))
        key = self.node.keys.get(spec.key_id)
        if key is None:
            if self.party_id in start.source_signers:
                raise NotFound(f"key {spec.key_id} is not held by this local party, which is one of source_signers")
            if not (start.source_party_ids and start.source_threshold and start.source_public_key):
                raise InvalidArgument(
                    "local party: new to the key, it needs source_party_ids, source_threshold and source_public_key"
                )
            return start
        if start.protocol != convert.PROTOCOLS[key.protocol]:  # type: ignore[index]
            raise InvalidArgument("local party: protocol does not match the source key")
        if not start.source_party_ids:
            start.source_party_ids.extend(key.party_ids)
        start.source_threshold = start.source_threshold or key.threshold
        start.source_public_key = start.source_public_key or key.public_key
        start.source_chain_code = start.source_chain_code or key.chain_code
        if self.party_id in start.source_signers:
            start.sealed_blobs.append(
                epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
            )
        return start

    def _repair_start(self, spec: SessionSpec) -> epb.SessionStart:
        """A helper brings its share of the key, which the spec must describe as it is; the
        repaired party must hold nothing of it here (as on a node: signer.api.repair)."""
        start = convert.repair_start(spec.repair_request(self.party_id))
        key = self.node.keys.get(spec.key_id)
        if self.party_id == start.repair_party_id:
            if key is not None:
                raise FailedPrecondition(
                    f"local party: it holds a share of key {spec.key_id}; a repair rebuilds a lost one"
                )
            if not start.source_public_key:
                raise InvalidArgument("local party: the repaired party needs the key's public_key")
            return start
        if key is None:
            raise NotFound(f"key {spec.key_id} is not held by this local party, which is one of helpers")
        if tuple(start.party_ids) != key.party_ids or start.threshold != key.threshold:
            raise InvalidArgument("local party: party_ids and threshold must be the key's (party_ids in its order)")
        start.sealed_blobs.append(
            epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key.key_id, data=key.sealed_share)
        )
        return start

    def _apply(self, update: epb.SessionUpdate) -> list[pb.ProtocolMessage]:
        start = self._start
        assert start is not None
        if update.state == epb.SESSION_STATE_FAILED:
            self.outcome.state = pb.SESSION_STATE_FAILED
            self.outcome.failure = pb.SessionFailure(culprits=update.culprits, reason=update.reason)
        elif update.state == epb.SESSION_STATE_DONE:
            self.outcome.result = self._keep(update.result)
            self.outcome.state = pb.SESSION_STATE_DONE
        else:
            self.outcome.state = pb.SESSION_STATE_RUNNING
        out = []
        for m in update.outgoing:
            envelope = pb.ProtocolMessage(
                session_id=start.session_id,
                sender=self.party_id,
                recipient=m.recipient,
                round=m.round,
                seq=self._seq,
                payload=m.payload,
            )
            self._seq += 1
            self.node.hmac.sign(envelope)
            out.append(envelope)
        return out

    def _keep(self, r: epb.SessionResult) -> pb.SessionResult:
        """Store sealed results locally and return the public result, as a signer node would."""
        start = self._start
        assert start is not None
        protocol = convert.PUBLIC_PROTOCOLS[start.protocol]
        if start.kind in convert.KEY_RESULT_KINDS:
            # A dealer leaving the key in a reshare, a repair's helper: nothing to keep.
            if not r.HasField("sealed_share"):
                return pb.SessionResult(dkg=convert.dkg_result(r, start))
            self.node.keys[r.key_id] = LocalKey(
                key_id=r.key_id,
                protocol=protocol,
                party_ids=tuple(start.party_ids),
                threshold=start.threshold,
                public_key=r.public_key,
                chain_code=r.chain_code,
                sealed_share=r.sealed_share.data,
                predecessor_key_id=r.predecessor_key_id,
            )
            return pb.SessionResult(dkg=convert.dkg_result(r, start))
        if start.kind == epb.SESSION_KIND_PRESIGN:
            pool = self.node.presignatures.setdefault(start.key_id, {})
            for blob in r.sealed_presignatures:
                pool[blob.id] = blob.data
            ids = [blob.id for blob in r.sealed_presignatures]
            return pb.SessionResult(
                presign=pb.PresignResult(
                    key_id=start.key_id,
                    presignature_id=ids[0] if ids else "",
                    derivation_path=start.derivation_path,
                    presignature_ids=ids,
                )
            )
        return pb.SessionResult(sign=convert.sign_result(r, pb.SIGNATURE_ENCODING_RAW))
