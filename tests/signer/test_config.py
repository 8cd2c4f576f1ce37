"""Configuration: defaults, file, environment precedence, and a clear error for every bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from signer.config.loader import ConfigError, describe_keys, env_var_names, load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_embedded_defaults() -> None:
    config = load_config(environ={})
    assert config.server.listen == "127.0.0.1:9091"
    assert config.tls.ca_file == Path("var/certs/ca.pem")
    assert config.tls.cert_file == Path("var/certs/server.pem")
    assert config.enclave.mode == "embedded"
    assert config.enclave.address.startswith("unix://var/")
    assert config.storage.url.startswith("sqlite:var/")


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:1000"\nnode_id = "from-file"\n[tls]\nallowed_clients = ["a"]\n')
    env = {
        "MPC_SIGNER_SERVER_LISTEN": "127.0.0.1:2000",
        "MPC_SIGNER_TLS_ALLOWED_CLIENTS": "x, y",
        "MPC_SIGNER_HMAC_KEYS": "a=/k/a,b=/k/b",
        "MPC_SIGNER_HMAC_ACTIVE_KEY_ID": "b",
    }
    config = load_config(path, env)
    assert config.server.listen == "127.0.0.1:2000"
    assert config.server.node_id == "from-file"
    assert config.tls.allowed_clients == ("x", "y")
    assert dict(config.hmac.keys) == {"a": Path("/k/a"), "b": Path("/k/b")}
    assert load_config(environ={"MPC_SIGNER_CONFIG": str(path)}).server.node_id == "from-file"


def test_config_is_frozen() -> None:
    config = load_config(environ={})
    with pytest.raises(AttributeError):
        config.server.listen = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.jwt.keys["new"] = Path("x")  # type: ignore[index]


BAD_ENV = {
    "MPC_SIGNER_SERVER_LISTEN": ("nowhere", "server.listen"),
    "MPC_SIGNER_SERVER_GRACE_SECONDS": ("soon", "server.grace_seconds"),
    "MPC_SIGNER_SERVER_MAX_MESSAGE_BYTES": ("10", "server.max_message_bytes"),
    "MPC_SIGNER_SERVER_NODE_ID": ("has space", "server.node_id"),
    "MPC_SIGNER_SERVER_LOG_LEVEL": ("LOUD", "server.log_level"),
    "MPC_SIGNER_TLS_ALLOWED_CLIENTS": ("", "tls.allowed_clients"),
    "MPC_SIGNER_JWT_ISSUER": ("", "jwt.issuer"),
    "MPC_SIGNER_JWT_LEEWAY_SECONDS": ("-1", "jwt.leeway_seconds"),
    "MPC_SIGNER_JWT_MAX_LIFETIME_SECONDS": ("0", "jwt.max_lifetime_seconds"),
    "MPC_SIGNER_JWT_KEYS": ("dev", "jwt.keys"),
    "MPC_SIGNER_HMAC_ACTIVE_KEY_ID": ("nope", "hmac.active_key_id"),
    "MPC_SIGNER_HMAC_RETIRED_KEY_IDS": ("dev", "hmac.active_key_id"),
    "MPC_SIGNER_ENCLAVE_MODE": ("cloud", "enclave.mode"),
    "MPC_SIGNER_ENCLAVE_ADDRESS": ("tcp://10.1.2.3:5000", "enclave.address"),
    "MPC_SIGNER_ENCLAVE_CALL_TIMEOUT_SECONDS": ("0", "enclave.call_timeout_seconds"),
    "MPC_SIGNER_ENCLAVE_MAX_FRAME_BYTES": ("12", "enclave.max_frame_bytes"),
    "MPC_SIGNER_SESSIONS_MAX_CONCURRENT": ("0", "sessions.max_concurrent"),
    "MPC_SIGNER_STORAGE_URL": ("mysql://db", "storage.url"),
    "MPC_SIGNER_NOT_A_KEY": ("1", "MPC_SIGNER_NOT_A_KEY"),
}


@pytest.mark.parametrize("name", sorted(BAD_ENV))
def test_bad_environment_value_names_the_key(name: str) -> None:
    value, key = BAD_ENV[name]
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(environ={name: value})


def test_cross_checks_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"enclave\.psk_file"):
        load_config(environ={"MPC_SIGNER_ENCLAVE_ADDRESS": "tcp://127.0.0.1:5000"})
    with pytest.raises(ConfigError, match=r"enclave\.mode"):
        load_config(environ={"MPC_SIGNER_ENCLAVE_ADDRESS": "vsock://16:5000", "MPC_SIGNER_ENCLAVE_PSK_FILE": "p"})
    vsock = {"MPC_SIGNER_ENCLAVE_ADDRESS": "vsock://16:5000", "MPC_SIGNER_ENCLAVE_MODE": "external"}
    # vsock has no permissions: any local process could connect, so the key is required there too
    with pytest.raises(ConfigError, match=r"enclave\.psk_file: required when enclave\.address is vsock://"):
        load_config(environ=vsock)
    assert load_config(environ={**vsock, "MPC_SIGNER_ENCLAVE_PSK_FILE": "p"}).enclave.address == "vsock://16:5000"
    insecure = {**vsock, "MPC_SIGNER_ENCLAVE_INSECURE_NO_CHANNEL_AUTH_FOR_DEVELOPMENT": "true"}
    assert load_config(environ=insecure).enclave.psk_file is None
    attested = {**vsock, "MPC_SIGNER_ENCLAVE_PSK_FILE": "p", "MPC_SIGNER_ENCLAVE_PSK_PROVISIONING": "attested"}
    with pytest.raises(ConfigError, match=r"enclave\.expected_pcrs_file: required"):
        load_config(environ=attested)
    assert load_config(environ={**attested, "MPC_SIGNER_ENCLAVE_EXPECTED_PCRS_FILE": "pcrs.json"})
    with pytest.raises(ConfigError, match=r"hmac\.senders: \['other'\] not in hmac\.keys"):
        load_config(environ={"MPC_SIGNER_HMAC_SENDERS": "other=client"})


def test_hmac_sender_bindings(tmp_path: Path) -> None:
    config = load_config(environ={"MPC_SIGNER_HMAC_SENDERS": "dev=signer signer-1"})
    assert dict(config.hmac.senders) == {"dev": "signer signer-1"}
    with pytest.raises(ConfigError, match=r"hmac\.senders: invalid party id"):
        load_config(environ={"MPC_SIGNER_HMAC_SENDERS": "dev=sign/er"})
    path = tmp_path / "blank.toml"
    path.write_text('[hmac]\nsenders = { dev = " " }\n')
    with pytest.raises(ConfigError, match=r"hmac\.senders: every key id must name at least one party"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nlisten = 9091\n", "server.listen"),
        ('[server]\nlistne = "127.0.0.1:1"\n', "server.listne"),
        ("[srever]\n", "srever"),
        ('[jwt]\nleeway_seconds = "ten"\n', "jwt.leeway_seconds"),
        ('[jwt]\nkeys = ["a"]\n', "jwt.keys"),
        ('[tls]\nallowed_clients = "mpc-service"\n', "tls.allowed_clients"),
        ("[enclave]\nmax_frame_bytes = true\n", "enclave.max_frame_bytes"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_bad_file_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(path, {})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file"):
        load_config(tmp_path / "absent.toml", {})


def test_env_var_names_are_derived_from_the_keys() -> None:
    names = env_var_names()
    assert "MPC_SIGNER_CONFIG" in names
    for key, env, _default, _doc in describe_keys():
        section, name = key.split(".")
        assert env == f"MPC_SIGNER_{section}_{name}".upper()
        assert env in names
    # every listed variable is one the loader knows (a bad value may fail, but never as "unknown")
    for name in names[1:]:
        try:
            load_config(environ={name: "x"})
        except ConfigError as exc:
            assert "unknown" not in str(exc), name


def test_readme_documents_every_key() -> None:
    text = README.read_text()
    for key, env, _default, _doc in describe_keys():
        assert f"`{key}`" in text, key
        assert f"`{env}`" in text, env


def test_secret_values_stay_out_of_repr() -> None:
    config = load_config(environ={"MPC_SIGNER_STORAGE_URL": "postgresql://u:hunter2@db/x"})
    assert "hunter2" not in repr(config) and "hunter2" not in repr(config.storage)
    with pytest.raises(ConfigError) as info:
        load_config(environ={"MPC_SIGNER_STORAGE_URL": "mysql://u:hunter2@db/x"})
    assert "hunter2" not in str(info.value)
