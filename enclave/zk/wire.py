"""The one strict CBOR codec of the enclave: proofs, GG20 message bodies and sealed blobs.

Proofs: a CBOR array of the dataclass fields, in declaration order (`encode`, `decode`).
Proof dataclasses hold only ints, bytes (encoded group elements, decoded strictly at
verification), and tuples of those; `decode` checks the field count and every value's type
(bool is not an int here) and raises `InvalidEncoding`, so a peer cannot smuggle floats,
nested maps or missing fields into a verifier. Range and unit checks stay in each `verify`.

Bodies: a CBOR array (`dumps`); `CborReader` walks it and checks each item's type as it is
taken, so a malformed body raises `InvalidEncoding` (which a round turns into a fault of the
sender).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import cbor2

from enclave.errors import InvalidEncoding
from enclave.group.base import Element, Group

T = TypeVar("T")

_MAX_PROOF_BYTES = 1 << 20
MAX_BODY = 4 << 20


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


def _loads(data: bytes, limit: int, too_large: str, malformed: str) -> Any:
    if len(data) > limit:
        raise InvalidEncoding(too_large)
    try:
        return cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types on malformed input
        raise InvalidEncoding(malformed) from exc


def decode(cls: type[T], data: bytes) -> T:
    items = _loads(data, _MAX_PROOF_BYTES, "proof too large", "malformed proof encoding")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if type(items) is not list or len(items) != len(fields):
        raise InvalidEncoding("proof has the wrong number of fields")
    values = {f.name: _check(str(f.type), v) for f, v in zip(fields, items, strict=True)}
    return cls(**values)


def dumps(items: list[Any]) -> bytes:
    return cbor2.dumps(items)


class CborReader:
    """Reads a CBOR array of exactly `count` items, one typed item at a time."""

    def __init__(self, data: bytes, count: int) -> None:
        items = _loads(data, MAX_BODY, "body too large", "malformed body")
        if type(items) is not list or len(items) != count:
            raise InvalidEncoding("body has the wrong shape")
        self._items = items
        self._i = 0

    def any(self) -> Any:
        """The next item, unchecked (the caller checks its type)."""
        v = self._items[self._i]
        self._i += 1
        return v

    def integer(self) -> int:
        v = self.any()
        if type(v) is not int:
            raise InvalidEncoding("expected an integer")
        return v

    def blob(self, length: int | None = None) -> bytes:
        v = self.any()
        if type(v) is not bytes or (length is not None and len(v) != length):
            raise InvalidEncoding("expected bytes")
        return v

    def point(self, group: Group) -> Element:
        return group.decode(self.blob(group.element_len))

    def int_map(self) -> dict[int, Any]:
        v = self.any()
        if type(v) is not dict or not all(type(k) is int for k in v):
            raise InvalidEncoding("expected a map keyed by party")
        return v

    def proof(self, cls: type[T]) -> T:
        return decode(cls, self.blob())
