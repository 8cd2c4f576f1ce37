"""A ZF frost client as a party of relayed sessions: `frost_rs` does the protocol, this module
only puts the envelope of proto/mpc/v1/signer.proto ("FROST payloads") around its bytes.

    node = ZfNode(ring)                       # the caller's HMAC key ring
    Relay({"client": node, "signer-1": signer_client}).run(spec)
    node.adopt(key_id, public_key)            # file a DKG's key under the id the signers gave it

It is written from that comment alone (it imports nothing of enclave/ nor door/): the frame,
the echo digests and the DKG round-2 encryption are spelled out again here, so a test passing
through the real service shows the contract is complete. Group arithmetic comes from libsodium
(PyNaCl) and libsecp256k1 (coincurve), the AEADs and HKDF from pyca/cryptography.

frost_rs is ZF frost behind base64url text, with two differences from frost-core a real client
would not have: its round-1 secret package is JSON (we read a_0, the polynomial's constant term,
out of it), and it hands out DKG round-2 shares inside its own envelope (AES-256-GCM under
HKDF-SHA256(salt "FROST_RS", ikm = encoding of a_0(sender) * phi_0(recipient)), a random 12-byte
nonce first, plaintext the JSON string of the share's hex encoding) instead of a clear
dkg::round2::Package. `_FrostRsEnvelope` takes that envelope off and puts it back; the bytes in
between are the round2::Package ZF frost-core would have produced.

`ZfNode(ring, tamper="dkg-share" | "sign-share" | "echo")` makes the client misbehave on
purpose: its DKG share for each peer, or its signature share, is off by one (well formed, well
encrypted), or its round-2 echo misreports the round-1 broadcast of the last party.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from coincurve import PrivateKey, PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from frost_rs import utility_ed25519, utility_secp256k1
from nacl import bindings as sodium

from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.spec import Outcome, SessionSpec

ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class ZfFailure(Exception):
    """frost_rs refused something, or a peer's payload broke the contract."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def zf(fn: Callable[..., Any], *args: Any) -> Any:
    """A frost_rs call; its failures are pyo3 PanicExceptions (BaseException)."""
    try:
        return fn(*args)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        raise ZfFailure(f"frost_rs {fn.__name__}: {type(exc).__name__}") from exc


# -- the suites: what the contract calls E, id(i), x*G, the header and the suite name -------------


@dataclass(frozen=True)
class Suite:
    name: str  # the contract's `suite` in the DKG key derivation
    context: bytes
    module: ModuleType
    element_len: int
    order: int
    byteorder: Any  # of the scalar encoding
    base_mul: Callable[[bytes], bytes] = field(repr=False)
    mul: Callable[[bytes, bytes], bytes] = field(repr=False)  # (scalar, element); validates it

    @property
    def header(self) -> bytes:
        return b"\x00" + zlib.crc32(self.context).to_bytes(4, "big")

    def scalar(self, n: int) -> bytes:
        return n.to_bytes(32, self.byteorder)

    def int_of(self, data: bytes) -> int:
        n = int.from_bytes(data, self.byteorder)
        if len(data) != 32 or n >= self.order:
            raise ZfFailure("not a canonical scalar")
        return n

    def random_scalar(self) -> bytes:
        return self.scalar(secrets.randbelow(self.order - 1) + 1)


def _ed_mul(k: bytes, point: bytes) -> bytes:
    # libsodium refuses non-canonical, small-order and off-subgroup points and an identity result
    return bytes(sodium.crypto_scalarmult_ed25519_noclamp(k, point))


def _secp_mul(k: bytes, point: bytes) -> bytes:
    if len(point) != 33:
        raise ZfFailure("not a compressed point")
    return bytes(PublicKey(point).multiply(k).format(compressed=True))


ED25519 = Suite(
    "frost-ed25519",
    b"FROST-ED25519-SHA512-v1",
    utility_ed25519,
    32,
    ED25519_ORDER,
    "little",
    lambda k: bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(k)),
    _ed_mul,
)
SECP256K1 = Suite(
    "frost-secp256k1",
    b"FROST-secp256k1-SHA256-v1",
    utility_secp256k1,
    33,
    SECP256K1_ORDER,
    "big",
    lambda k: bytes(PrivateKey(k).public_key.format(compressed=True)),
    _secp_mul,
)
SUITES = {pb.PROTOCOL_FROST_ED25519: ED25519, pb.PROTOCOL_FROST_SECP256K1: SECP256K1}


# -- the frame and the echo ------------------------------------------------------------------------

ECHO_TAG = b"mpc-signer/rounds/echo/v1"
BROADCAST, DIRECT = 0, 1


def lp64(x: bytes) -> bytes:
    return len(x).to_bytes(8, "big") + x


def echo_digest(sid: bytes, round_no: int, index: int, body: bytes) -> bytes:
    parts = (sid, round_no.to_bytes(2, "big"), index.to_bytes(4, "big"), body)
    return hashlib.sha256(ECHO_TAG + b"".join(lp64(p) for p in parts)).digest()


def frame(round_no: int, kind: int, echo: Sequence[bytes], body: bytes) -> bytes:
    head = b"\x01" + round_no.to_bytes(2, "big") + bytes([kind]) + len(echo).to_bytes(2, "big")
    return head + b"".join(echo) + body


@dataclass(frozen=True)
class Frame:
    round: int
    kind: int
    echo: tuple[bytes, ...]
    body: bytes


def parse_frame(payload: bytes) -> Frame:
    if len(payload) < 6 or payload[0] != 1 or payload[3] not in (BROADCAST, DIRECT):
        raise ZfFailure("bad frame header")
    n = int.from_bytes(payload[4:6], "big")
    end = 6 + 32 * n
    if len(payload) < end:
        raise ZfFailure("truncated echo")
    echo = tuple(payload[i : i + 32] for i in range(6, end, 32))
    return Frame(int.from_bytes(payload[1:3], "big"), payload[3], echo, payload[end:])


# -- DKG round 2: the contract's encryption, and frost_rs's envelope ---------------------------------


def share_cipher(cs: Suite, sid: bytes, shared: bytes, x_s: bytes, x_r: bytes, s: int, r: int) -> ChaCha20Poly1305:
    info = b"mpc-signer/" + cs.name.encode() + b"/dkg-share-key/v1" + x_s + x_r + cs.scalar(s) + cs.scalar(r)
    salt = hashlib.sha256(sid).digest()
    return ChaCha20Poly1305(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(shared))


def share_aad(cs: Suite, sid: bytes, s: int, r: int) -> bytes:
    tag = b"mpc-signer/" + cs.name.encode() + b"/dkg-share/v1"
    return tag + len(sid).to_bytes(4, "big") + sid + cs.scalar(s) + cs.scalar(r)


NONCE = bytes(12)


@dataclass(frozen=True)
class _FrostRsEnvelope:
    """frost_rs's transport of round-2 shares between this client (a_0) and one peer (phi_0)."""

    cs: Suite
    a0: bytes = field(repr=False)

    def _aead(self, peer_phi0: bytes) -> AESGCM:
        shared = self.cs.mul(self.a0, peer_phi0)
        return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=b"FROST_RS", info=b"").derive(shared))

    def open(self, peer_phi0: bytes, envelope: str) -> bytes:
        raw = unb64(envelope)
        text = json.loads(self._aead(peer_phi0).decrypt(raw[:12], raw[12:], None))
        return bytes.fromhex(text)

    def seal(self, peer_phi0: bytes, share: bytes) -> str:
        nonce = secrets.token_bytes(12)
        plaintext = json.dumps(share.hex()).encode()
        return b64(nonce + self._aead(peer_phi0).encrypt(nonce, plaintext, None))


def _round1_a0(cs: Suite, secret_package: str) -> bytes:
    """a_0 from frost_rs's JSON round-1 secret package (Ed25519: a byte list, secp256k1: hex)."""
    first = json.loads(json.loads(unb64(secret_package))["coefficent"][0])  # sic, frost_rs's key
    return bytes(first) if isinstance(first, list) else bytes.fromhex(first)


def _phi0(cs: Suite, round1_package: bytes) -> bytes:
    """phi_0 of a ZF dkg::round1::Package: header || varint t || t elements || proof."""
    if round1_package[:5] != cs.header or not 0 < round1_package[5] < 0x80:
        raise ZfFailure("not a round-1 package of this suite")
    return round1_package[6 : 6 + cs.element_len]


def _verifying_key(cs: Suite, public_key_package: bytes) -> bytes:
    """The group key of a ZF PublicKeyPackage: header || n || n (id || element) || key [|| t]."""
    n = public_key_package[5]
    assert n < 0x80, "one-byte varint"
    start = 6 + n * (32 + cs.element_len)
    return public_key_package[start : start + cs.element_len]


# -- the protocols: frost_rs calls, bodies in and out ---------------------------------------------


@dataclass
class ZfKey:
    """What the client keeps of a key: frost_rs's key packages and the DKG's party list."""

    protocol: int
    party_ids: tuple[str, ...]
    threshold: int
    public_key: bytes
    key_package: str = field(repr=False)
    public_key_package: str


class _Dkg:
    """ZF keys::dkg part1..3 through frost_rs, with the contract's round-1 key X and round-2 AEAD."""

    def __init__(self, cs: Suite, sid: bytes, me: int, indices: Sequence[int], threshold: int, tamper: bool) -> None:
        self.cs, self.sid, self.me, self.tamper = cs, sid, me, tamper
        self.indices = sorted(indices)
        self.threshold = threshold
        self.secret1, package = zf(cs.module.round1, b64(cs.scalar(me)), threshold, len(indices))
        self.envelope = _FrostRsEnvelope(cs, _round1_a0(cs, self.secret1))
        self.x = cs.random_scalar()
        self.x_pub = cs.base_mul(self.x)
        self.first = unb64(package) + self.x_pub
        self.peers: dict[int, tuple[bytes, bytes]] = {}  # index -> (round1::Package, X)
        self.secret2 = ""

    def _shared(self, peer: int) -> bytes:
        return self.cs.mul(self.x, self.peers[peer][1])

    def round1(self, bodies: dict[int, bytes]) -> dict[int, bytes]:
        cs, n = self.cs, self.cs.element_len
        for i, body in bodies.items():
            if len(body) <= n:
                raise ZfFailure("round-1 body too short")
            self.peers[i] = (body[:-n], body[-n:])
        packages = {b64(cs.scalar(i)): b64(p) for i, (p, _) in self.peers.items()}
        self.secret2, out = zf(cs.module.round2, self.secret1, packages)
        sends = {}
        for i, (package, x_r) in self.peers.items():
            share = self.envelope.open(_phi0(cs, package), out[b64(cs.scalar(i))])
            if self.tamper:
                share = cs.scalar((cs.int_of(share) + 1) % cs.order)
            aead = share_cipher(cs, self.sid, self._shared(i), self.x_pub, x_r, self.me, i)
            sends[i] = aead.encrypt(NONCE, cs.header + share, share_aad(cs, self.sid, self.me, i))
        return sends

    def round2(self, bodies: dict[int, bytes]) -> tuple[str, str]:
        cs = self.cs
        packages, shares = {}, {}
        for i, body in bodies.items():
            package, x_s = self.peers[i]
            aead = share_cipher(cs, self.sid, self._shared(i), x_s, self.x_pub, i, self.me)
            plaintext = aead.decrypt(NONCE, body, share_aad(cs, self.sid, i, self.me))
            if len(plaintext) != 37 or plaintext[:5] != cs.header:
                raise ZfFailure("not a round-2 package of this suite")
            cs.int_of(plaintext[5:])
            packages[b64(cs.scalar(i))] = b64(package)
            shares[b64(cs.scalar(i))] = self.envelope.seal(_phi0(cs, package), plaintext[5:])
        key_package, public_key_package = zf(cs.module.round3, self.secret2, packages, shares)
        return key_package, public_key_package


class _Sign:
    """Two-round FROST signing through frost_rs; every signer aggregates."""

    def __init__(self, cs: Suite, key: ZfKey, me: int, message: bytes, tamper: bool) -> None:
        self.cs, self.key, self.me, self.message, self.tamper = cs, key, me, message, tamper
        self.nonces, commitments = zf(cs.module.preprocess, key.key_package)
        self.first = unb64(commitments)
        self.commitments: dict[str, str] = {b64(cs.scalar(me)): commitments}
        self.shares: dict[str, str] = {}

    def round1(self, bodies: dict[int, bytes]) -> bytes:
        cs = self.cs
        for i, body in bodies.items():
            self.commitments[b64(cs.scalar(i))] = b64(body)
        share = unb64(zf(cs.module.sign, self.message, self.commitments, self.nonces, self.key.key_package))
        if self.tamper:
            share = cs.scalar((cs.int_of(share) + 1) % cs.order)
        self.shares[b64(cs.scalar(self.me))] = b64(share)
        return share

    def round2(self, bodies: dict[int, bytes]) -> bytes:
        for i, body in bodies.items():
            self.shares[b64(self.cs.scalar(i))] = b64(body)
        args = (self.message, self.commitments, self.shares, self.key.public_key_package)
        return unb64(zf(self.cs.module.aggregate, *args))


# -- the party: HMAC'd envelopes, routing, sequence numbers, the echo check -----------------------


class ZfNode:
    """The client's keys; `party(party_id)` is its party in one relayed session."""

    def __init__(self, ring: HmacKeyRing, tamper: str = "") -> None:
        assert tamper in ("", "dkg-share", "sign-share", "echo")
        self.ring = ring
        self.tamper = tamper
        self.keys: dict[str, ZfKey] = {}  # by key id
        self.fresh: dict[bytes, ZfKey] = {}  # DKG outputs by group key, until adopted

    def party(self, party_id: str) -> ZfParty:
        return ZfParty(self, party_id)

    def adopt(self, key_id: str, public_key: bytes) -> ZfKey:
        """File the key this client made with `public_key` under the signers' `key_id`."""
        key = self.fresh.pop(public_key)
        self.keys[key_id] = key
        return key


class ZfParty:
    """One session of the client (signer.client.relay's party interface)."""

    remote = False

    def __init__(self, node: ZfNode, party_id: str) -> None:
        self.node = node
        self.party_id = party_id
        self.outcome = Outcome(party_id)
        self._seq = 1
        self._last_seq: dict[str, int] = {}
        self._inbox: dict[tuple[int, int], Frame] = {}  # (round, sender index)
        self._round1: dict[int, bytes] = {}  # round-1 broadcast bodies by index, ours included
        self._echo: tuple[bytes, ...] = ()
        self._round = 0
        self._spec: SessionSpec | None = None
        self._proto: _Dkg | _Sign | None = None
        self._index: dict[str, int] = {}

    @property
    def _me(self) -> int:
        return self._index[self.party_id]

    async def start(self, spec: SessionSpec, initial: Sequence[pb.ProtocolMessage] = ()) -> list[pb.ProtocolMessage]:
        cs = SUITES[spec.protocol]
        self._spec = spec
        if spec.kind == "dkg":
            self._index = {p: n + 1 for n, p in enumerate(spec.party_ids)}
            tamper = self.node.tamper == "dkg-share"
            self._proto = _Dkg(cs, self.session_id, self._me, list(self._index.values()), spec.threshold, tamper)
        elif spec.kind == "sign":
            key = self.node.keys[spec.key_id]
            assert key.protocol == spec.protocol and len(spec.party_ids) >= key.threshold
            self._index = {p: key.party_ids.index(p) + 1 for p in spec.party_ids}
            self._proto = _Sign(cs, key, self._me, spec.message, self.node.tamper == "sign-share")
        else:
            raise ValueError("FROST has no presigning")
        self._round = 1
        self._round1[self._me] = self._proto.first
        self.outcome.state = pb.SESSION_STATE_RUNNING
        out = [self._envelope("", 1, frame(1, BROADCAST, (), self._proto.first))]
        return out + (await self.deliver(initial) if initial else [])

    async def deliver(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        if self.outcome.finished:
            return []
        self.node.ring.verify_all(messages)
        for m in messages:
            self._accept(m)
        out: list[pb.ProtocolMessage] = []
        try:
            self._advance(out)
        except Exception as exc:  # frost_rs, the AEAD or a peer's bytes refused: this party fails
            self._fail(f"{type(exc).__name__}: {exc}")
        return out  # what was sent before a failure still goes out, as a real client's would

    async def refresh(self) -> Outcome:
        return self.outcome

    async def abort(self, reason: str) -> None:
        if not self.outcome.finished:
            self._fail(reason)

    def _accept(self, m: pb.ProtocolMessage) -> None:
        """Routing and freshness, then the frame: its round and kind as the contract has them."""
        assert self._spec is not None
        if m.session_id != self._spec.session_id or m.sender not in self._index or m.sender == self.party_id:
            raise ZfFailure("message for another session or from outside it")
        if m.recipient not in ("", self.party_id):
            raise ZfFailure("message for another party")
        if m.seq <= self._last_seq.get(m.sender, 0):
            raise ZfFailure("replayed sequence number")
        self._last_seq[m.sender] = m.seq
        f = parse_frame(m.payload)
        direct = self._spec.kind == "dkg" and f.round == 2
        if f.round != m.round or f.round not in (1, 2) or f.kind != (DIRECT if direct else BROADCAST):
            raise ZfFailure("frame round or kind not the contract's")
        if (f.kind == DIRECT) != bool(m.recipient):
            raise ZfFailure("frame kind does not match the recipient")
        key = (f.round, self._index[m.sender])
        if key in self._inbox:
            raise ZfFailure("duplicate message")
        self._inbox[key] = f

    def _bodies(self, round_no: int) -> dict[int, Frame] | None:
        peers = [i for i in self._index.values() if i != self._me]
        if any((round_no, i) not in self._inbox for i in peers):
            return None
        return {i: self._inbox[(round_no, i)] for i in peers}

    def _advance(self, out: list[pb.ProtocolMessage]) -> None:
        first = self._bodies(1) if self._round == 1 else None
        if first is not None:
            if any(f.echo for f in first.values()):
                raise ZfFailure("round-1 messages carry no echo")
            self._round1.update({i: f.body for i, f in first.items()})
            sid = self.session_id
            self._echo = tuple(echo_digest(sid, 1, i, self._round1[i]) for i in sorted(self._round1))
            sent = self._echo
            if self.node.tamper == "echo":
                sent = (*sent[:-1], bytes(32))
            out += self._round_two({i: f.body for i, f in first.items()}, sent)
            self._round = 2
        second = self._bodies(2) if self._round == 2 else None
        if second is not None:
            for i, f in second.items():
                if len(f.echo) != len(self._echo) or not all(map(hmac.compare_digest, f.echo, self._echo)):
                    culprit = next(p for p, j in self._index.items() if j == i)
                    self._fail("broadcast inconsistency", [culprit])
                    return
            self._finish({i: f.body for i, f in second.items()})

    @property
    def session_id(self) -> bytes:
        assert self._spec is not None
        return self._spec.session_id.encode("utf-8")

    def _round_two(self, bodies: dict[int, bytes], echo: tuple[bytes, ...]) -> list[pb.ProtocolMessage]:
        name = {i: p for p, i in self._index.items()}
        if isinstance(self._proto, _Dkg):
            sends = self._proto.round1(bodies)
            return [self._envelope(name[i], 2, frame(2, DIRECT, echo, sends[i])) for i in sorted(sends)]
        assert isinstance(self._proto, _Sign)
        return [self._envelope("", 2, frame(2, BROADCAST, echo, self._proto.round1(bodies)))]

    def _finish(self, bodies: dict[int, bytes]) -> None:
        spec, proto = self._spec, self._proto
        assert spec is not None
        cs = SUITES[spec.protocol]
        if isinstance(proto, _Dkg):
            key_package, public_key_package = proto.round2(bodies)
            group_key = _verifying_key(cs, unb64(public_key_package))
            key = ZfKey(spec.protocol, spec.party_ids, spec.threshold, group_key, key_package, public_key_package)
            self.node.fresh[group_key] = key
            result = pb.DKGResult(
                public_key=group_key, protocol=spec.protocol, threshold=spec.threshold, party_ids=spec.party_ids
            )
            self.outcome.result = pb.SessionResult(dkg=result)
        else:
            assert isinstance(proto, _Sign)
            signature = proto.round2(bodies)
            sign = pb.SignResult(key_id=spec.key_id, signature=signature, public_key=proto.key.public_key)
            self.outcome.result = pb.SessionResult(sign=sign)
        self.outcome.state = pb.SESSION_STATE_DONE
        self._proto = None  # the secrets go with it

    def _fail(self, reason: str, culprits: Sequence[str] = ()) -> None:
        self.outcome.state = pb.SESSION_STATE_FAILED
        self.outcome.failure = pb.SessionFailure(culprits=culprits, reason=reason)
        self._proto = None

    def _envelope(self, recipient: str, round_no: int, payload: bytes) -> pb.ProtocolMessage:
        assert self._spec is not None
        m = pb.ProtocolMessage(
            session_id=self._spec.session_id,
            sender=self.party_id,
            recipient=recipient,
            round=round_no,
            seq=self._seq,
            payload=payload,
        )
        self._seq += 1
        self.node.ring.sign(m)
        return m
