"""Reading a client certificate's identity (signer.auth.mtls): exact names from the certificate
itself, by SAN type, never a name that only looks like an allowed one."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from signer.auth.mtls import ClientAllowlist, certificate_identities
from signer.errors import PermissionDenied, Unauthenticated
from signer.ops.devcerts import make_ca
from tests.integration.test_rejections import _odd_certificate

CA = make_ca()


def pem(cn: str, sans: list[x509.GeneralName] | None) -> bytes:
    return _odd_certificate(CA, cn, sans).cert_pem()


def context(cert: bytes) -> dict[str, list[bytes]]:
    return {"transport_security_type": [b"ssl"], "x509_pem_cert": [cert]}


def test_dns_names_are_the_identities_and_the_cn_is_not_consulted() -> None:
    cert = pem(
        "mpc-service",
        [x509.DNSName("a.example"), x509.DNSName("b.example"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    assert certificate_identities(cert) == ("a.example", "b.example")


def test_uri_names_count_only_when_configured() -> None:
    cert = pem("x", [x509.UniformResourceIdentifier("spiffe://corp/mpc-service")])
    assert certificate_identities(cert) == ()
    assert certificate_identities(cert, allow_uri_sans=True) == ("spiffe://corp/mpc-service",)
    allow = ClientAllowlist(["spiffe://corp/mpc-service"], allow_uri_sans=True)
    assert allow.check(context(cert)) == "spiffe://corp/mpc-service"
    with pytest.raises(Unauthenticated):
        ClientAllowlist(["spiffe://corp/mpc-service"]).check(context(cert))


@pytest.mark.parametrize("name", ["mpc-service\0.evil", "mpc-service\n", "mpc-service ", "mpc-sérvice", "\x7f"])
def test_names_with_control_space_or_non_ascii_are_never_identities(name: str) -> None:
    if name.isascii():  # cryptography itself refuses to write a non-ASCII DNS name
        assert certificate_identities(pem("x", [x509.DNSName(name)])) == ()
    assert certificate_identities(pem(name, None)) == ()


def test_the_cn_is_the_identity_only_without_a_san_extension() -> None:
    assert certificate_identities(pem("mpc-service", None)) == ("mpc-service",)
    assert certificate_identities(pem("mpc-service", [x509.RFC822Name("a@b")])) == ()


def test_allowlist_matches_exactly_and_needs_one_certificate() -> None:
    allow = ClientAllowlist(["mpc-service"])
    assert allow.check(context(pem("x", [x509.DNSName("mpc-service")]))) == "mpc-service"
    for other in ("MPC-SERVICE", "mpc-service.evil", "mpc-servic"):
        with pytest.raises(PermissionDenied):
            allow.check(context(pem("x", [x509.DNSName(other)])))
    with pytest.raises(Unauthenticated):
        allow.check({"transport_security_type": [b"ssl"]})
    with pytest.raises(Unauthenticated):
        allow.check({"transport_security_type": [b"ssl"], "x509_pem_cert": [b"not a certificate"]})
    with pytest.raises(Unauthenticated):
        allow.check({"transport_security_type": [b"insecure"], "x509_pem_cert": [pem("mpc-service", None)]})
