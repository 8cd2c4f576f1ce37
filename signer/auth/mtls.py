"""Client identity from the TLS peer certificate, checked against an allowlist by exact match.

The TLS handshake itself (grpc core) has already required a client certificate that chains to
the configured CA and is within its validity period; a handshake failure never reaches Python.
The identity is read here from the certificate itself (`x509_pem_cert` in grpc's auth context),
parsed with `cryptography`, not from grpc's `x509_subject_alternative_name` and
`x509_common_name` properties: those are C strings, cut at the first NUL, so a certificate for
`mpc-service\\0.evil.example` would read as `mpc-service`, and they mix every SAN type.

Rules (RFC 6125 style):
* the DNS names of the subjectAltName extension are the identities; URI names too, only when
  configured (`tls.allow_uri_sans`); no other SAN type (e-mail, IP, directory name) ever is;
* a certificate with a subjectAltName extension never falls back to its subject CN, even when
  none of its names is usable; the CN is read only from a certificate with no such extension;
* a name with a NUL, a control character, white space or anything outside printable ASCII is
  never an identity (it could only be an attempt to look like another name);
* the match against `tls.allowed_clients` is exact: no prefix, case folding or wildcard.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID

from signer.errors import PermissionDenied, Unauthenticated

AuthContext = Mapping[str, Iterable[bytes]]

# Parsed certificates by their PEM: a client presents the same certificate on every call, and
# parsing one costs more than the rest of the check. Bounded, oldest dropped first.
_CACHE_SIZE = 256


def usable_name(name: str) -> bool:
    """Printable ASCII without spaces: what a DNS name, URI or CN of ours can be."""
    return bool(name) and all(0x21 <= ord(c) <= 0x7E for c in name)


def certificate_identities(pem: bytes, allow_uri_sans: bool = False) -> tuple[str, ...]:
    """The names of a PEM certificate that may serve as its identity, by the module's rules."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return ()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    except ValueError:  # a malformed extension: no identity rather than a guess
        return ()
    else:
        names = list(san.get_values_for_type(x509.DNSName))
        if allow_uri_sans:
            names += san.get_values_for_type(x509.UniformResourceIdentifier)
    return tuple(n for n in names if isinstance(n, str) and usable_name(n))


def peer_certificate(auth_context: AuthContext) -> bytes | None:
    pems = list(auth_context.get("x509_pem_cert", ()))
    return pems[0] if len(pems) == 1 else None


class ClientAllowlist:
    def __init__(self, allowed: Iterable[str], allow_uri_sans: bool = False) -> None:
        self._allowed = frozenset(allowed)
        self._uri = allow_uri_sans
        self._parsed: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()

    def identities(self, auth_context: AuthContext) -> tuple[str, ...]:
        """The usable identities of the peer's certificate (none without exactly one)."""
        pem = peer_certificate(auth_context)
        if pem is None:
            return ()
        names = self._parsed.get(pem)
        if names is None:
            names = certificate_identities(pem, self._uri)
            self._parsed[pem] = names
            if len(self._parsed) > _CACHE_SIZE:
                self._parsed.popitem(last=False)
        return names

    def check(self, auth_context: AuthContext) -> str:
        """The allowed identity of the peer; raises if there is none."""
        if next(iter(auth_context.get("transport_security_type", ())), b"") != b"ssl":
            raise Unauthenticated("a TLS client certificate is required")
        identities = self.identities(auth_context)
        if not identities:
            raise Unauthenticated("the client certificate names no usable identity")
        for identity in identities:
            if identity in self._allowed:
                return identity
        raise PermissionDenied("client certificate identity is not allowed")
