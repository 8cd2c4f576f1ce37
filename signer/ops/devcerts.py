"""Development credentials (`mpc-signer certs`): a CA, server and client certificates, a JWT
signing key and an HMAC key. For development and tests only; production certificates come from
your own PKI. The helpers also build the odd certificates the tests need (another CA, expired,
a disallowed identity).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signer.private_files import private_dir

CLIENT_IDENTITY = "mpc-service"


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return private_key_pem(self.key)


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(common_name: str = "mpc-signer dev CA", days: int = 3650) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = _now() - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A leaf certificate signed by `ca` (client auth, or server auth when `server`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    end = not_after or start + dt.timedelta(days=825)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class DevCertPaths:
    """Files written by `write_dev_certs`."""

    dir: Path
    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    jwt_key: Path
    jwt_pub: Path
    hmac_key: Path
    enclave_psk: Path

    @classmethod
    def under(cls, out: Path) -> DevCertPaths:
        return cls(
            dir=out,
            ca=out / "ca.pem",
            ca_key=out / "ca.key",
            server_cert=out / "server.pem",
            server_key=out / "server.key",
            client_cert=out / "client.pem",
            client_key=out / "client.key",
            jwt_key=out / "jwt.key",
            jwt_pub=out / "jwt.pub",
            hmac_key=out / "hmac.key",
            enclave_psk=out / "enclave.psk",
        )


def _write(path: Path, data: bytes, secret: bool) -> None:
    # Secret files are created 0600 from the start (no window with wider permissions).
    mode = 0o600 if secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def write_dev_certs(out: Path, *, overwrite: bool = False) -> DevCertPaths:
    paths = DevCertPaths.under(out)
    if paths.ca.exists() and not overwrite:
        raise FileExistsError(f"{paths.ca} exists; pass overwrite=True (--force) to replace the dev credentials")
    private_dir(out)
    ca = make_ca()
    server = issue(ca, "localhost", dns_names=("localhost",), ip_addresses=("127.0.0.1",), server=True)
    client = issue(ca, CLIENT_IDENTITY, dns_names=(CLIENT_IDENTITY,))
    jwt_key = ec.generate_private_key(ec.SECP256R1())
    _write(paths.ca, ca.cert_pem(), secret=False)
    _write(paths.ca_key, ca.key_pem(), secret=True)
    _write(paths.server_cert, server.cert_pem(), secret=False)
    _write(paths.server_key, server.key_pem(), secret=True)
    _write(paths.client_cert, client.cert_pem(), secret=False)
    _write(paths.client_key, client.key_pem(), secret=True)
    _write(paths.jwt_key, private_key_pem(jwt_key), secret=True)
    _write(
        paths.jwt_pub,
        jwt_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        secret=False,
    )
    _write(paths.hmac_key, (secrets.token_hex(32) + "\n").encode(), secret=True)
    _write(paths.enclave_psk, (secrets.token_hex(32) + "\n").encode(), secret=True)
    return paths
