"""The enclave's attestors. The NSM ioctl is replaced by a recorder that reads the real request the
library builds (from the iovec in memory) and writes a response the way the NSM driver does; the
request encoding, the ioctl number and the response handling are therefore the real code paths."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_nsm_interface
import cbor2
import pytest

from enclave.errors import BadInput
from enclave.tee.attestation import (
    NO_ATTESTATION_STATEMENT,
    AttestationUnavailable,
    NitroAttestor,
    NoneAttestor,
    mix_nsm_entropy,
)

NSM_IOCTL = 0xC0200A00  # _IOWR(0x0A, 0, struct nsm_message) on 64-bit Linux


class FakeNsm:
    def __init__(self, answer: Callable[[Any], Any]) -> None:
        self.answer = answer
        self.requests: list[Any] = []

    def ioctl(self, fd: Any, op: int, message: Any, *_: Any) -> int:
        assert op == NSM_IOCTL
        assert ctypes.sizeof(message) == 32  # two iovecs
        request = cbor2.loads(ctypes.string_at(message.request.iov_base, message.request.iov_len))
        self.requests.append(request)
        response = cbor2.dumps(self.answer(request))
        assert len(response) <= message.response.iov_len
        ctypes.memmove(message.response.iov_base, response, len(response))
        message.response.iov_len = len(response)
        return 0


@pytest.fixture
def device(tmp_path: Path) -> str:
    path = tmp_path / "nsm"
    path.write_bytes(b"")
    return str(path)


def install(monkeypatch: pytest.MonkeyPatch, answer: Callable[[Any], Any]) -> FakeNsm:
    fake = FakeNsm(answer)
    monkeypatch.setattr(aws_nsm_interface.fcntl, "ioctl", fake.ioctl)
    return fake


def test_none_attestor_says_plainly_there_is_none() -> None:
    att = NoneAttestor().attest(public_key=b"k", user_data=b"", nonce=b"n")
    assert att.mode == "none"
    assert att.document == b""
    assert att.statement == NO_ATTESTATION_STATEMENT
    assert "not running in a TEE" in att.statement


def test_attestation_request_encoding(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    fake = install(monkeypatch, lambda req: {"Attestation": {"document": b"\xd2cose-bytes"}})
    att = NitroAttestor(device).attest(public_key=b"spki-der", user_data=b"ud", nonce=b"nonce-123")
    assert att.mode == "nitro" and att.document == b"\xd2cose-bytes"
    assert fake.requests == [{"Attestation": {"user_data": b"ud", "nonce": b"nonce-123", "public_key": b"spki-der"}}]


def test_empty_optional_fields_are_sent_as_null(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    fake = install(monkeypatch, lambda req: {"Attestation": {"document": b"doc"}})
    NitroAttestor(device).attest(public_key=b"", user_data=b"", nonce=b"n")
    assert fake.requests[0]["Attestation"] == {"user_data": None, "nonce": b"n", "public_key": None}


def test_nsm_error_is_reported(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    install(monkeypatch, lambda req: {"Error": "InvalidArgument"})
    with pytest.raises(AttestationUnavailable, match="InvalidArgument"):
        NitroAttestor(device).attest(public_key=b"k", user_data=b"", nonce=b"n")


def test_request_limits_checked_before_the_nsm(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    fake = install(monkeypatch, lambda req: {"Attestation": {"document": b"doc"}})
    nitro = NitroAttestor(device)
    for kwargs in (
        {"public_key": b"k" * 1025, "user_data": b"", "nonce": b"n"},
        {"public_key": b"", "user_data": b"u" * 513, "nonce": b"n"},
        {"public_key": b"", "user_data": b"", "nonce": b"n" * 513},
        {"public_key": b"", "user_data": b"", "nonce": b""},
    ):
        with pytest.raises(BadInput):
            nitro.attest(**kwargs)
    assert fake.requests == []


def test_missing_device() -> None:
    with pytest.raises(AttestationUnavailable, match="cannot open the Nitro Secure Module"):
        NitroAttestor("/nonexistent/nsm")


def test_random_and_entropy_mixing(monkeypatch: pytest.MonkeyPatch, device: str, tmp_path: Path) -> None:
    fake = install(monkeypatch, lambda req: {"GetRandom": {"random": bytes(range(256))}})
    nitro = NitroAttestor(device)
    assert nitro.random_bytes(16) == bytes(range(16))
    assert fake.requests == ["GetRandom"]
    pool = tmp_path / "pool"
    pool.write_bytes(b"")
    mix_nsm_entropy(nitro, str(pool), rounds=2)
    assert pool.read_bytes() == bytes(range(256)) * 2


def test_random_error(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    install(monkeypatch, lambda req: {"Error": "InternalError"})
    with pytest.raises(AttestationUnavailable):
        NitroAttestor(device).random_bytes(32)
