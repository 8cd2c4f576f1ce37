"""Hypothesis strategies that turn one protocol message into a hostile one.

A mutation is a function of the original `ProtocolMessage` that returns the envelope fields to
send instead; the party wrapper (tests.fuzz.parties) then HMACs the result with the caller's key,
so the signer's authentication passes and its round parsing, proofs and state machine are what
the bytes reach. Mutations work on the raw payload (bit flips, overwrites, truncation, extension,
random bytes), on the round frame (`enclave.protocols.driver.Frame`: round, kind, echo digests,
body) and on the envelope's own round and recipient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from enclave.errors import InvalidEncoding
from enclave.protocols.driver import ECHO_LEN, Frame, Kind
from mpc.v1 import signer_pb2 as pb


@dataclass(frozen=True)
class Mutation:
    """What to do to one message; `describe` names it in a failing example."""

    describe: str
    apply: Callable[[pb.ProtocolMessage], None]

    def __repr__(self) -> str:
        return self.describe


def _payload(change: Callable[[bytes], bytes], describe: str) -> Mutation:
    def apply(m: pb.ProtocolMessage) -> None:
        m.payload = change(bytes(m.payload))

    return Mutation(describe, apply)


def _frame(change: Callable[[Frame], Frame], describe: str) -> Mutation:
    """A change to the parsed frame, re-encoded (a payload that does not parse is left as is)."""

    def apply(m: pb.ProtocolMessage) -> None:
        try:
            frame = Frame.decode(bytes(m.payload))
        except InvalidEncoding:
            return
        m.payload = change(frame).encode()

    return Mutation(describe, apply)


def _at(data: bytes, fraction: float) -> int:
    return min(len(data) - 1, int(fraction * len(data))) if data else 0


fractions = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def bit_flip(draw: st.DrawFn) -> Mutation:
    where, bit = draw(fractions), draw(st.integers(0, 7))

    def change(p: bytes) -> bytes:
        if not p:
            return b"\x01"
        i = _at(p, where)
        return p[:i] + bytes([p[i] ^ (1 << bit)]) + p[i + 1 :]

    return _payload(change, f"flip bit {bit} at {where:.3f}")


@st.composite
def overwrite(draw: st.DrawFn) -> Mutation:
    where, data = draw(fractions), draw(st.binary(min_size=1, max_size=64))

    def change(p: bytes) -> bytes:
        i = _at(p, where)
        return p[:i] + data + p[i + len(data) :]

    return _payload(change, f"overwrite {data.hex()} at {where:.3f}")


@st.composite
def truncate(draw: st.DrawFn) -> Mutation:
    keep = draw(fractions)
    return _payload(lambda p: p[: int(keep * len(p))], f"truncate to {keep:.3f}")


@st.composite
def extend(draw: st.DrawFn) -> Mutation:
    tail = draw(st.binary(min_size=1, max_size=128))
    return _payload(lambda p: p + tail, f"append {len(tail)} bytes")


@st.composite
def replace_all(draw: st.DrawFn) -> Mutation:
    data = draw(st.binary(max_size=512))
    return _payload(lambda _p: data, f"replace with {len(data)} random bytes")


@st.composite
def cut_slice(draw: st.DrawFn) -> Mutation:
    a, b = sorted((draw(fractions), draw(fractions)))

    def change(p: bytes) -> bytes:
        return p[: int(a * len(p))] + p[int(b * len(p)) :]

    return _payload(change, f"cut {a:.3f}..{b:.3f}")


@st.composite
def frame_round(draw: st.DrawFn) -> Mutation:
    rnd = draw(st.one_of(st.integers(0, 8), st.just(0xFFFF)))
    return _frame(lambda f: Frame(rnd, f.kind, f.echo, f.body), f"frame round {rnd}")


def frame_kind() -> st.SearchStrategy[Mutation]:
    return st.just(_frame(lambda f: Frame(f.round, Kind(1 - f.kind), f.echo, f.body), "swap frame kind"))


@st.composite
def frame_echo(draw: st.DrawFn) -> Mutation:
    choice = draw(st.sampled_from(["drop", "add", "corrupt"]))
    junk = draw(st.binary(min_size=ECHO_LEN, max_size=ECHO_LEN))

    def change(f: Frame) -> Frame:
        if choice == "drop":
            echo = f.echo[1:]
        elif choice == "add":
            echo = (*f.echo, junk)
        else:
            echo = (junk, *f.echo[1:]) if f.echo else (junk,)
        return Frame(f.round, f.kind, echo, f.body)

    return _frame(change, f"echo: {choice}")


@st.composite
def frame_body(draw: st.DrawFn) -> Mutation:
    """A mutation of the body alone, inside an intact frame: what the round's decoder sees."""
    inner = draw(st.one_of(bit_flip(), overwrite(), truncate(), extend(), cut_slice(), replace_all()))

    def change(f: Frame) -> Frame:
        carrier = pb.ProtocolMessage(payload=f.body)
        inner.apply(carrier)
        return Frame(f.round, f.kind, f.echo, bytes(carrier.payload))

    return _frame(change, f"body: {inner.describe}")


@st.composite
def envelope(draw: st.DrawFn) -> Mutation:
    """The envelope's own round or recipient (HMAC'd like the rest)."""
    field = draw(st.sampled_from(["round", "recipient"]))
    if field == "round":
        rnd = draw(st.integers(0, 2**32 - 1))

        def set_round(m: pb.ProtocolMessage) -> None:
            m.round = rnd

        return Mutation(f"envelope round {rnd}", set_round)
    # (recipients the relay routes to the signer; any other one is the request-field fuzz's)
    recipient = draw(st.sampled_from(["", "signer"]))

    def set_recipient(m: pb.ProtocolMessage) -> None:
        m.recipient = recipient

    return Mutation(f"envelope recipient {recipient!r}", set_recipient)


# Most examples change the body inside a valid frame (that is where the parsers are); the rest
# break the frame or the envelope.
single = st.one_of(
    frame_body(),
    frame_body(),
    frame_body(),
    bit_flip(),
    overwrite(),
    truncate(),
    extend(),
    replace_all(),
    cut_slice(),
    frame_round(),
    frame_kind(),
    frame_echo(),
    envelope(),
)
mutations = st.lists(single, min_size=1, max_size=3)
