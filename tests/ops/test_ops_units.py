"""Small pure pieces of the operations work: configuration checks, log formatting, the backup
HMAC key file reader."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from signer.config.loader import ConfigError, load_config
from signer.config.schema import consul_advertise
from signer.logs import JsonFormatter, TextFormatter, _plain, _request_session_id, bind
from signer.ops.cli import _hmac_key, _since


def test_consul_advertise_defaults_and_wildcards() -> None:
    config = load_config(environ={"MPC_SIGNER_CONSUL_ENABLED": "true", "MPC_SIGNER_SERVER_LISTEN": "10.0.0.5:9091"})
    assert consul_advertise(config) == ("10.0.0.5", 9091)
    config = load_config(
        environ={
            "MPC_SIGNER_CONSUL_ENABLED": "true",
            "MPC_SIGNER_SERVER_LISTEN": "0.0.0.0:9091",
            "MPC_SIGNER_CONSUL_ADVERTISE_HOST": "signer-1.internal",
            "MPC_SIGNER_CONSUL_ADVERTISE_PORT": "19091",
        }
    )
    assert consul_advertise(config) == ("signer-1.internal", 19091)
    with pytest.raises(ConfigError, match=r"consul\.advertise_host: required"):
        load_config(environ={"MPC_SIGNER_CONSUL_ENABLED": "true", "MPC_SIGNER_SERVER_LISTEN": "0.0.0.0:9091"})
    # Without Consul a wildcard listen address is fine.
    load_config(environ={"MPC_SIGNER_SERVER_LISTEN": "0.0.0.0:9091"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MPC_SIGNER_CONSUL_ADDRESS": "consul"}, "consul.address"),
        ({"MPC_SIGNER_CONSUL_DEREGISTER_CRITICAL_AFTER": "ten minutes"}, "consul.deregister_critical_after"),
        ({"MPC_SIGNER_CONSUL_TTL_SECONDS": "0"}, "consul.ttl_seconds"),
        ({"MPC_SIGNER_CONSUL_SERVICE_ID": "bad id"}, "consul.service_id"),
        ({"MPC_SIGNER_METRICS_LISTEN": "9464"}, "metrics.listen"),
        ({"MPC_SIGNER_METRICS_LISTEN": "127.0.0.1:9091"}, "metrics.listen: must differ"),
        ({"MPC_SIGNER_SERVER_LOG_FORMAT": "xml"}, "server.log_format"),
    ],
)
def test_bad_operations_values_name_their_key(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=env)


def record(msg: str = "hello %s", args: tuple[object, ...] = ("world",)) -> logging.LogRecord:
    return logging.LogRecord("signer.test", logging.INFO, __file__, 1, msg, args, None)


def test_json_lines_carry_the_ids_in_context_only() -> None:
    line = JsonFormatter().format(record())
    entry = json.loads(line)
    assert entry["message"] == "hello world" and entry["level"] == "INFO" and entry["logger"] == "signer.test"
    assert "request_id" not in entry and "session_id" not in entry and entry["time"].endswith("+00:00")
    with bind(request="r-1", session="s-1"):
        entry = json.loads(JsonFormatter().format(record("multi\nline", ())))
        assert TextFormatter().format(record()).endswith("[request=r-1 session=s-1]")
    assert entry["request_id"] == "r-1" and entry["session_id"] == "s-1" and entry["message"] == "multi\nline"
    assert "\n" not in JsonFormatter().format(record("multi\nline", ()))  # one object per line, always
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failing = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failing))["exc"]


def test_caller_chosen_ids_are_plain_and_bounded() -> None:
    assert _plain("req-1.a:b_c")
    for bad in ("", "a" * 129, "x\ny", 'x"}{"level":"ERROR', "a b"):
        assert not _plain(bad)

    class Req:
        session_id = "s\n1"

    assert _request_session_id(Req()) is None


def test_hmac_key_file_hex_or_raw_and_since(tmp_path: Path) -> None:
    hexfile, rawfile = tmp_path / "k.hex", tmp_path / "k.raw"
    hexfile.write_text("00112233445566778899aabbccddeeff\n")
    rawfile.write_bytes(b"\xff" * 20)
    assert _hmac_key(str(hexfile)) == bytes.fromhex("00112233445566778899aabbccddeeff")
    assert _hmac_key(str(rawfile)) == b"\xff" * 20
    assert _hmac_key(None) is None
    with pytest.raises(ConfigError, match="--hmac-key-file"):
        _hmac_key(str(tmp_path / "missing"))
    assert _since("2026-01-31").isoformat() == "2026-01-31T00:00:00+00:00"
    assert _since("2026-01-31T12:00:00Z").isoformat() == "2026-01-31T12:00:00+00:00"
