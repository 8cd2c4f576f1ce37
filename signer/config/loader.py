"""Loading the host's configuration: embedded defaults, then a TOML file, then MPC_SIGNER_*
environment variables.

Every key is `section.name`; its environment variable is `MPC_SIGNER_<SECTION>_<NAME>` in upper
case (`server.listen` -> `MPC_SIGNER_SERVER_LISTEN`), and `MPC_SIGNER_CONFIG` names the file.
Environment values are text: lists are comma-separated (`a,b`), maps are `k=v,k2=v2`, booleans
`true`/`false`. Unknown keys, unknown MPC_SIGNER_* variables and bad values are errors that name
the key and where the value came from. Relative paths are relative to the working directory.

The result is a frozen `Config` built once by the CLI and passed down; nothing reads the
environment or the file later. Files named here (certificates, keys) are read when the server
starts, with errors that name the key as well (see `signer.server`).
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import Field
from pathlib import Path
from typing import Any

from door.address import parse_address
from signer.config.schema import Config, section_keys, sections

ENV_PREFIX = "MPC_SIGNER_"
CONFIG_ENV = "MPC_SIGNER_CONFIG"


class ConfigError(ValueError):
    """A bad configuration value; the message names the key and its source."""


def env_var_name(section: str, name: str) -> str:
    return f"{ENV_PREFIX}{section}_{name}".upper()


def env_var_names() -> list[str]:
    """Every environment variable the configuration accepts (MPC_SIGNER_CONFIG included)."""
    names = [CONFIG_ENV]
    for section, section_type in sections().items():
        names += [env_var_name(section, name) for name in section_keys(section_type)]
    return names


def describe_keys() -> list[tuple[str, str, Any, str]]:
    """(key, env var, default, doc) for every key: the source of the README reference."""
    rows = []
    for section, section_type in sections().items():
        defaults = section_type()
        for name, (_hint, f) in section_keys(section_type).items():
            rows.append((f"{section}.{name}", env_var_name(section, name), getattr(defaults, name), f.metadata["doc"]))
    return rows


# --- converters: a TOML value (or an environment string) to a field's type --------------------
# Each takes (raw, from_env) and raises TypeError/ValueError with a short description.


def _bool(raw: Any, from_env: bool) -> bool:
    if from_env:
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise ValueError("expected true or false")
    if not isinstance(raw, bool):
        raise TypeError("expected a boolean")
    return raw


def _int(raw: Any, from_env: bool) -> int:
    if from_env:
        return int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError("expected an integer")
    return raw


def _float(raw: Any, from_env: bool) -> float:
    if from_env:
        return float(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeError("expected a number")
    return float(raw)


def _str(raw: Any, from_env: bool) -> str:
    if not isinstance(raw, str):
        raise TypeError("expected a string")
    return raw


def _path(raw: Any, from_env: bool) -> Path:
    if not isinstance(raw, str) or not raw:
        raise TypeError("expected a non-empty path string")
    return Path(raw)


def _strings(raw: Any, from_env: bool) -> tuple[str, ...]:
    items = [s.strip() for s in raw.split(",") if s.strip()] if from_env else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise TypeError("expected a list of strings")
    return tuple(items)


def _env_pairs(raw: str) -> dict[str, str]:
    pairs = {}
    for item in (s.strip() for s in raw.split(",") if s.strip()):
        k, sep, v = item.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise ValueError("expected key=value pairs separated by commas")
        pairs[k.strip()] = v.strip()
    return pairs


def _table(value: Callable[[str], Any]) -> Callable[[Any, bool], Mapping[str, Any]]:
    def convert(raw: Any, from_env: bool) -> Mapping[str, Any]:
        if from_env:
            raw = _env_pairs(raw)
        if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
            raise TypeError("expected a table of non-empty strings")
        return types.MappingProxyType({k: value(v) for k, v in raw.items()})

    return convert


_CONVERTERS: dict[Any, Callable[[Any, bool], Any]] = {
    bool: _bool,
    int: _int,
    float: _float,
    str: _str,
    Path: _path,
    tuple[str, ...]: _strings,
    Mapping[str, str]: _table(str),
    Mapping[str, Path]: _table(Path),
}


def _coerce(hint: Any, raw: Any, from_env: bool) -> Any:
    """Convert a TOML value (or an environment string) to the field's type; TypeError/ValueError
    with a short description otherwise. `X | None` takes an empty value (or none) as None."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        if raw is None or raw == "":
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    convert = _CONVERTERS.get(hint)
    if convert is None:
        raise TypeError(f"unsupported type {hint}")
    return convert(raw, from_env)


# --- loading ------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults <- file <- environment. `path` defaults to $MPC_SIGNER_CONFIG (no file if unset)."""
    env = dict(os.environ if environ is None else environ)
    if path is None:
        path = env.get(CONFIG_ENV) or None
    file_values = _read_file(path)
    known = sections()
    _refuse_unknown(file_values, env, known, path)
    built = {
        section: _build_section(section, section_type, file_values.get(section, {}), env, path)
        for section, section_type in known.items()
    }
    config = Config(**built)
    _cross_check(config)
    return config


def _read_file(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None


def _refuse_unknown(
    file_values: dict[str, Any], env: Mapping[str, str], known: Mapping[str, type], path: str | Path | None
) -> None:
    """Unknown sections (or ones that are not tables) in the file, unknown MPC_SIGNER_* variables."""
    for section in file_values:
        if section not in known:
            raise ConfigError(f"{section}: unknown section in {path} (known: {', '.join(known)})")
        if not isinstance(file_values[section], dict):
            raise ConfigError(f"{section}: must be a table in {path}")
    known_env = set(env_var_names())
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known_env:
            raise ConfigError(f"{name}: unknown MPC_SIGNER_* environment variable")


def _build_section(
    section: str, section_type: type, given: dict[str, Any], env: Mapping[str, str], path: str | Path | None
) -> Any:
    """One section: each key from the environment, else the file, else its default; every value,
    the defaults included, passes the key's check."""
    keys = section_keys(section_type)
    for name in given:
        if name not in keys:
            raise ConfigError(f"{section}.{name}: unknown key in {path}")
    values: dict[str, Any] = {}
    for name, (hint, f) in keys.items():
        env_name = env_var_name(section, name)
        if env_name in env:
            raw, source, from_env = env[env_name], f"environment {env_name}", True
        elif name in given:
            raw, source, from_env = given[name], f"file {path}", False
        else:
            continue
        try:
            value = _coerce(hint, raw, from_env)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{section}.{name}: {exc} (from {source})") from None
        values[name] = value
        _validate(section, name, f, value, source)
    for name, (_hint, f) in keys.items():
        if name not in values:
            _validate(section, name, f, getattr(section_type(), name), "default")
    return section_type(**values)


def _validate(section: str, name: str, f: Field[Any], value: Any, source: str) -> None:
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{section}.{name}: {value!r} is not one of {', '.join(choices)} (from {source})")
    check = f.metadata.get("check")
    problem = check(value) if check is not None else None
    if problem:
        raise ConfigError(f"{section}.{name}: {problem} (from {source})")


def _cross_check(config: Config) -> None:
    h = config.hmac
    if h.active_key_id not in h.keys:
        raise ConfigError(f"hmac.active_key_id: {h.active_key_id!r} is not in hmac.keys")
    if h.active_key_id in h.retired_key_ids:
        raise ConfigError(f"hmac.active_key_id: {h.active_key_id!r} is listed in hmac.retired_key_ids")
    unknown = [k for k in h.retired_key_ids if k not in h.keys]
    if unknown:
        raise ConfigError(f"hmac.retired_key_ids: {unknown} not in hmac.keys")
    unknown = [k for k in h.senders if k not in h.keys]
    if unknown:
        raise ConfigError(f"hmac.senders: {unknown} not in hmac.keys")
    e = config.enclave
    address = parse_address(e.address)
    if address.scheme in ("tcp", "vsock") and e.psk_file is None and not e.insecure_no_channel_auth_for_development:
        raise ConfigError(
            f"enclave.psk_file: required when enclave.address is {address.scheme}:// (any local process can "
            "connect to it; enclave.insecure_no_channel_auth_for_development is for development only)"
        )
    if e.psk_provisioning == "attested":
        if e.psk_file is None or e.expected_pcrs_file is None:
            raise ConfigError(
                "enclave.psk_file and enclave.expected_pcrs_file: required with psk_provisioning = attested"
            )
        if e.mode == "embedded":
            raise ConfigError("enclave.psk_provisioning: 'attested' is for an external (Nitro) enclave")
    if e.mode == "embedded" and address.scheme == "vsock":
        raise ConfigError("enclave.mode: 'embedded' runs the enclave as a local process; use unix:// or tcp://")
    c = config.consul
    if c.enabled and not c.advertise_host:
        host = config.server.listen.rpartition(":")[0].strip("[]")
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 (detecting a wildcard, not binding one)
            raise ConfigError(
                f"consul.advertise_host: required when consul.enabled and server.listen binds a wildcard ({host})"
            )
    p = config.policy
    if p.callback_url and (p.ca_file is None or p.node_key_file is None):
        raise ConfigError("policy.ca_file and policy.node_key_file: required when policy.callback_url is set")
    if config.metrics.listen and config.metrics.listen == config.server.listen:
        raise ConfigError("metrics.listen: must differ from server.listen")
