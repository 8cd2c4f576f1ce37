"""Client identity from the TLS peer (grpc's auth context) checked against an allowlist.

The TLS handshake itself (grpc core) has already required a client certificate that chains to
the configured CA and is within its validity period; a handshake failure never reaches Python.
Here the identity is the certificate's subjectAltName entries when it has any, else its subject
CN (RFC 6125 style: a CN is not consulted when SANs are present).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from signer.errors import PermissionDenied, Unauthenticated

AuthContext = Mapping[str, Iterable[bytes]]


def peer_identities(auth_context: AuthContext) -> list[str]:
    sans = [v.decode("utf-8", "replace") for v in auth_context.get("x509_subject_alternative_name", ())]
    if sans:
        return sans
    return [v.decode("utf-8", "replace") for v in auth_context.get("x509_common_name", ())]


class ClientAllowlist:
    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = frozenset(allowed)

    def check(self, auth_context: AuthContext) -> str:
        """The allowed identity of the peer; raises if there is none."""
        if next(iter(auth_context.get("transport_security_type", ())), b"") != b"ssl":
            raise Unauthenticated("a TLS client certificate is required")
        identities = peer_identities(auth_context)
        if not identities:
            raise Unauthenticated("the client certificate names no identity")
        for identity in identities:
            if identity in self._allowed:
                return identity
        raise PermissionDenied("client certificate identity is not allowed")
