"""Access to ZcashFoundation frost through the PyPI binding `frost_rs` (utility_ed25519).

frost_rs passes every object as base64url text of ZF frost's postcard bytes, wants `bytes`
messages, and reports failures as pyo3 `PanicException`, a BaseException: `call` turns any
failure into `ZfError` so a test can assert on it without catching KeyboardInterrupt & co.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from frost_rs import utility_ed25519 as zf

from enclave.protocols.frost.ciphersuite import encode_identifier


class ZfError(Exception):
    pass


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def zid(identifier: int) -> str:
    return b64(encode_identifier(identifier))


def call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # pyo3 PanicException derives from BaseException
        raise ZfError(type(exc).__name__) from exc


__all__ = ["ZfError", "b64", "call", "unb64", "zf", "zid"]
