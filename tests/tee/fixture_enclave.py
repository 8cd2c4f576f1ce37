"""`python -m tests.tee.fixture_enclave ...`: the enclave process exactly as `python -m enclave`
runs it (same options, service, engine, sealers and checks), with what only Nitro hardware or AWS
provide replaced by test stand-ins. Test harness code; nothing in the product reads these.

Environment (each optional):
    MPC_TEST_ATTESTATION_DIR   `--attestation nitro` attests with documents signed by the test CA
                               chain in this directory (root.pem, intermediate.pem, leaf.pem,
                               leaf.key) instead of the NSM (/dev/nsm exists only in Nitro)
    MPC_TEST_KMS_PORT          the KMS client's vsock hop to the parent's proxy becomes TCP to
                               127.0.0.1:PORT (TLS to kms.<region>.amazonaws.com, certificate
                               checking against SSL_CERT_FILE, and SigV4 stay the product's)
    MPC_TEST_FINISHED_RETENTION how many finished sessions the engine remembers (memory bound)
    MPC_TEST_PRIME_SLICE       fixture safe primes, as tests/service/fixture_enclave.py
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import enclave.__main__ as enclave_main
from enclave import options
from enclave.engine.engine import Engine
from enclave.tee.attestation import NONE_MODE, Attestor, NoneAttestor
from enclave.tee.identity import EnclaveIdentity
from enclave.tee.kms_http import Connector
from tests.service.fixture_enclave import prime_slice
from tests.tee.nitro_docs import CaChain
from tests.tee.test_kms import DocAttestor


def write_chain(chain: CaChain, directory: Path) -> Path:
    """Store what the fixture process needs of `chain` (the leaf key signs its documents)."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (directory / "root.pem").write_bytes(chain.root.public_bytes(pem))
    (directory / "intermediate.pem").write_bytes(chain.intermediate.public_bytes(pem))
    (directory / "leaf.pem").write_bytes(chain.leaf.public_bytes(pem))
    (directory / "leaf.key").write_bytes(
        chain.leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory


def _load_chain(directory: Path) -> CaChain:
    def cert(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((directory / name).read_bytes())

    leaf_key = serialization.load_pem_private_key((directory / "leaf.key").read_bytes(), password=None)
    assert isinstance(leaf_key, ec.EllipticCurvePrivateKey)
    # Only the leaf key signs documents; the CA keys stay with the test.
    return CaChain(None, cert("root.pem"), None, cert("intermediate.pem"), leaf_key, cert("leaf.pem"))  # type: ignore[arg-type]


def _make_attestor(mode: str) -> Attestor:
    if mode == NONE_MODE:
        return NoneAttestor()
    return DocAttestor(_load_chain(Path(os.environ["MPC_TEST_ATTESTATION_DIR"])))


def _kms_connector(port: int) -> Connector:
    target = int(os.environ["MPC_TEST_KMS_PORT"])

    def connect(timeout: float) -> socket.socket:
        return socket.create_connection(("127.0.0.1", target), timeout=timeout)

    return connect


def _build_engine(parts: options.EngineParts, identity: EnclaveIdentity) -> Engine:
    config = parts.config
    if "MPC_TEST_FINISHED_RETENTION" in os.environ:
        config = replace(config, finished_retention=int(os.environ["MPC_TEST_FINISHED_RETENTION"]))
    source = prime_slice(int(os.environ.get("MPC_TEST_PRIME_SLICE", "1")))
    return Engine(parts.sealer, config=config, policy=parts.policy, prime_source=source, identity=identity)


if __name__ == "__main__":
    if "MPC_TEST_ATTESTATION_DIR" in os.environ:
        options.make_attestor = _make_attestor
    if "MPC_TEST_KMS_PORT" in os.environ:
        options.kms_connector = _kms_connector
    enclave_main.build_engine = _build_engine  # type: ignore[assignment]
    sys.exit(enclave_main.main())
