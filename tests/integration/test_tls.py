"""What grpc core's TLS actually negotiates (its Python API has no version knob, so we measure):
TLS 1.3 preferred, TLS 1.2 accepted, anything older refused; the server certificate verifies for
127.0.0.1 and localhost against the dev CA."""

from __future__ import annotations

import socket
import ssl

import pytest


def _context(signer, minimum: ssl.TLSVersion, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(signer.certs.ca)
    ctx.load_cert_chain(signer.certs.client_cert, signer.certs.client_key)
    ctx.set_alpn_protocols(["h2"])
    ctx.minimum_version = minimum
    ctx.maximum_version = maximum
    return ctx


def _handshake(signer, ctx: ssl.SSLContext, server_name: str = "127.0.0.1") -> str:
    with (
        socket.create_connection(("127.0.0.1", signer.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return str(tls.version())


def test_prefers_tls13(signer) -> None:
    assert _handshake(signer, _context(signer, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.MAXIMUM_SUPPORTED)) == "TLSv1.3"
    assert (
        _handshake(signer, _context(signer, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.MAXIMUM_SUPPORTED), "localhost")
        == "TLSv1.3"
    )


def test_accepts_tls12(signer) -> None:
    assert _handshake(signer, _context(signer, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_refuses_tls11(signer) -> None:
    try:
        ctx = _context(signer, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ssl.SSLError, ValueError) as exc:  # pragma: no cover - depends on the local OpenSSL build
        pytest.skip(f"this OpenSSL cannot even offer TLS 1.1: {exc}")
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as info:
        _handshake(signer, ctx)
    # The client did offer TLS 1.1 (no local NO_PROTOCOLS_AVAILABLE); the server hung up on it.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(info.value).upper()
