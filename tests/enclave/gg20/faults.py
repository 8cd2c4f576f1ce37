"""Helpers for the adversarial GG20 tests: edit CBOR bodies, assert who is named."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import cbor2

from enclave.protocols.driver import Abort
from tests.harness import Result


def edit(fn: Callable[[list[Any]], None]) -> Callable[[bytes], bytes]:
    """A body transformer: decode the CBOR array, let `fn` mutate it, re-encode."""

    def apply(body: bytes) -> bytes:
        items = cbor2.loads(body)
        fn(items)
        return cbor2.dumps(items)

    return apply


def edit_proof(index: int, fn: Callable[[list[Any]], None]) -> Callable[[list[Any]], None]:
    """Mutate the proof (itself a CBOR array) stored as bytes at `index` of a body."""

    def apply(items: list[Any]) -> None:
        proof = cbor2.loads(items[index])
        fn(proof)
        items[index] = cbor2.dumps(proof)

    return apply


def assert_named(result: Result, culprit: int, honest: Iterable[int], reason: str | None = None) -> None:
    for p in honest:
        outcome = result.outcomes[p]
        assert isinstance(outcome, Abort), f"party {p}: {outcome!r}"
        assert outcome.culprits == frozenset({culprit}), f"party {p}: {outcome!r}"
        if reason is not None:
            assert outcome.reason == reason, f"party {p}: {outcome!r}"
