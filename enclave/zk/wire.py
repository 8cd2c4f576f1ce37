"""Strict wire form of proofs: a CBOR array of the dataclass fields, in declaration order.

Proof dataclasses hold only ints, bytes (encoded group elements, decoded strictly at
verification), and tuples of those; `decode` checks the field count and every value's type
(bool is not an int here) and raises `InvalidEncoding`, so a peer cannot smuggle floats,
nested maps or missing fields into a verifier. Range and unit checks stay in each `verify`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import cbor2

from enclave.errors import InvalidEncoding

T = TypeVar("T")

_MAX_PROOF_BYTES = 1 << 20


def encode(proof: Any) -> bytes:
    return cbor2.dumps([getattr(proof, f.name) for f in dataclasses.fields(proof)])


def _check(kind: str, value: object) -> object:
    if kind == "int":
        if type(value) is not int:
            raise InvalidEncoding("expected an integer")
        return value
    if kind == "bytes":
        if type(value) is not bytes:
            raise InvalidEncoding("expected bytes")
        return value
    if kind.startswith("tuple[") and kind.endswith(", ...]"):
        inner = kind[len("tuple[") : -len(", ...]")]
        if type(value) is not list:
            raise InvalidEncoding("expected an array")
        return tuple(_check(inner, v) for v in value)
    raise InvalidEncoding("unsupported field kind")


def decode(cls: type[T], data: bytes) -> T:
    if len(data) > _MAX_PROOF_BYTES:
        raise InvalidEncoding("proof too large")
    try:
        items = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on malformed input
        raise InvalidEncoding("malformed proof encoding") from exc
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if type(items) is not list or len(items) != len(fields):
        raise InvalidEncoding("proof has the wrong number of fields")
    values = {f.name: _check(str(f.type), v) for f, v in zip(fields, items, strict=True)}
    return cls(**values)
