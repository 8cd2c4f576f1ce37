"""Strict CBOR codec for GG20 message bodies and sealed blobs.

A body is a CBOR array; `Reader` walks it and checks each item's type as it is taken, so a
malformed body raises `InvalidEncoding` (which the round turns into a fault of the sender).
"""

from __future__ import annotations

from typing import Any, TypeVar

import cbor2

from enclave.errors import InvalidEncoding
from enclave.group.base import Element, Group
from enclave.zk import wire

T = TypeVar("T")

MAX_BODY = 4 << 20


def dumps(items: list[Any]) -> bytes:
    return cbor2.dumps(items)


class Reader:
    def __init__(self, data: bytes, count: int) -> None:
        if len(data) > MAX_BODY:
            raise InvalidEncoding("body too large")
        try:
            items = cbor2.loads(data)
        except Exception as exc:  # cbor2 raises several types on malformed input
            raise InvalidEncoding("malformed body") from exc
        if type(items) is not list or len(items) != count:
            raise InvalidEncoding("body has the wrong shape")
        self._items = items
        self._i = 0

    def _next(self) -> Any:
        v = self._items[self._i]
        self._i += 1
        return v

    def integer(self) -> int:
        v = self._next()
        if type(v) is not int:
            raise InvalidEncoding("expected an integer")
        return v

    def blob(self, length: int | None = None) -> bytes:
        v = self._next()
        if type(v) is not bytes or (length is not None and len(v) != length):
            raise InvalidEncoding("expected bytes")
        return v

    def point(self, group: Group) -> Element:
        return group.decode(self.blob(group.element_len))

    def points(self, group: Group) -> list[Element]:
        v = self._next()
        if type(v) is not list or not all(type(x) is bytes for x in v):
            raise InvalidEncoding("expected a list of points")
        return [group.decode(x) for x in v]

    def int_map(self) -> dict[int, Any]:
        v = self._next()
        if type(v) is not dict or not all(type(k) is int for k in v):
            raise InvalidEncoding("expected a map keyed by party")
        return v

    def proof(self, cls: type[T]) -> T:
        return wire.decode(cls, self.blob())
