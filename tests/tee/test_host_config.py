"""Host configuration of the TEE parts: policy.* and enclave.aws_credentials / imds_url, their
checks, and the README's Nitro section pointing at the operator guide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from signer.config.loader import ConfigError, load_config
from signer.server import _policy_client

ROOT = Path(__file__).resolve().parents[2]


def test_policy_callback_needs_its_ca_and_node_key() -> None:
    with pytest.raises(ConfigError, match=r"policy.ca_file and policy.node_key_file"):
        load_config(environ={"MPC_SIGNER_POLICY_CALLBACK_URL": "https://policy.local/approve"})
    with pytest.raises(ConfigError, match=r"policy.callback_url: must be an https:// URL"):
        load_config(environ={"MPC_SIGNER_POLICY_CALLBACK_URL": "http://policy.local/approve"})
    with pytest.raises(ConfigError, match=r"policy.timeout_seconds"):
        load_config(environ={"MPC_SIGNER_POLICY_TIMEOUT_SECONDS": "0"})
    assert _policy_client(load_config(environ={})) is None  # no callback: no policy step on the host


def test_policy_node_key_must_be_p256(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    key = tmp_path / "node.key"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    env = {
        "MPC_SIGNER_POLICY_CALLBACK_URL": "https://policy.local/approve",
        "MPC_SIGNER_POLICY_CA_FILE": str(ca),
        "MPC_SIGNER_POLICY_NODE_KEY_FILE": str(key),
    }
    with pytest.raises(ConfigError, match=r"policy.node_key_file: .*not a P-256 private key"):
        _policy_client(load_config(environ=env))
    key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ConfigError, match=r"^policy: "):  # the CA file is no PEM certificate
        _policy_client(load_config(environ=env))


def test_aws_credentials_source_and_imds_url() -> None:
    config = load_config(environ={"MPC_SIGNER_ENCLAVE_AWS_CREDENTIALS": "imds"})
    assert config.enclave.aws_credentials == "imds" and config.enclave.imds_url == "http://169.254.169.254"
    with pytest.raises(ConfigError, match=r"enclave.aws_credentials"):
        load_config(environ={"MPC_SIGNER_ENCLAVE_AWS_CREDENTIALS": "env"})
    with pytest.raises(ConfigError, match=r"enclave.imds_url"):
        load_config(environ={"MPC_SIGNER_ENCLAVE_IMDS_URL": "https://169.254.169.254"})


def test_readme_links_the_nitro_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Running on AWS Nitro Enclaves\n", 1)[1].split("\n## ", 1)[0]
    assert "(docs/nitro.md)" in section
    assert "make eif KMS_KEY_ARN=" in section and "vsock-proxy" in section and "verify_attestation" in section
    guide = (ROOT / "docs" / "nitro.md").read_text()
    assert re.search(r"^## Status of the integration$", guide, re.MULTILINE)
