"""Configuration: embedded defaults, then a TOML file, then MPC_SIGNER_* environment variables.

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
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from door.address import parse_address

ENV_PREFIX = "MPC_SIGNER_"
CONFIG_ENV = "MPC_SIGNER_CONFIG"
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class ConfigError(ValueError):
    """A bad configuration value; the message names the key and its source."""


def _check(predicate: Callable[[Any], bool], problem: str) -> Callable[[Any], str | None]:
    return lambda value: None if predicate(value) else problem


def _listen(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "expected HOST:PORT with a port in 1..65535 (e.g. 127.0.0.1:9091)"
    return None


def _enclave_address(value: str) -> str | None:
    try:
        parse_address(value)
    except ValueError as exc:
        return str(exc)
    return None


def _ids(value: tuple[str, ...] | Mapping[str, Any]) -> str | None:
    bad = [item for item in value if not ID_PATTERN.fullmatch(item)]
    return f"invalid id(s) {bad}: use 1-64 characters of [A-Za-z0-9._:-]" if bad else None


def key(default: Any, doc: str, check: Callable[[Any], str | None] | None = None, **extra: Any) -> Any:
    """A config field: its default, one line of documentation, and an optional check that
    returns a problem description (or None)."""
    metadata = {"doc": doc, "check": check, **extra}
    show = not extra.get("secret", False)
    if isinstance(default, (dict, list)):
        frozen = types.MappingProxyType(dict(default)) if isinstance(default, dict) else tuple(default)
        return field(default_factory=lambda: frozen, metadata=metadata, repr=show)
    return field(default=default, metadata=metadata, repr=show)


_positive = _check(lambda v: v > 0, "must be greater than 0")


@dataclass(frozen=True)
class ServerConfig:
    listen: str = key("127.0.0.1:9091", "gRPC listen address HOST:PORT", _listen)
    node_id: str = key(
        "signer-1",
        "this node's id, reported by Ping and used in logs",
        _check(lambda v: bool(ID_PATTERN.fullmatch(v)), "use 1-64 characters of [A-Za-z0-9._:-]"),
    )
    grace_seconds: float = key(
        5.0, "time given to in-flight RPCs at shutdown", _check(lambda v: v >= 0, "must be >= 0")
    )
    max_message_bytes: int = key(
        4 * 1024 * 1024,
        "largest gRPC request accepted",
        _check(lambda v: 1024 <= v <= 64 * 1024 * 1024, "must be in 1024..67108864"),
    )
    log_level: str = key("INFO", "DEBUG, INFO, WARNING or ERROR", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = key(
        "text",
        "json: one JSON object per line (time, level, logger, message, request_id, session_id); "
        "text: human-readable lines",
        choices=("json", "text"),
    )


@dataclass(frozen=True)
class TlsConfig:
    ca_file: Path = key(Path("var/certs/ca.pem"), "CA certificate(s) that client certificates must chain to")
    cert_file: Path = key(Path("var/certs/server.pem"), "server certificate chain (PEM)")
    key_file: Path = key(Path("var/certs/server.key"), "server private key (PEM)")
    allowed_clients: tuple[str, ...] = key(
        ["mpc-service"],
        "client identities allowed in, matched exactly against the certificate's DNS "
        "subjectAltNames (a certificate without that extension: its subject CN)",
        _check(lambda v: len(v) > 0 and all(v), "must list at least one identity"),
    )
    allow_uri_sans: bool = key(
        False, "also match allowed_clients against the certificate's URI subjectAltNames (e.g. SPIFFE ids)"
    )


@dataclass(frozen=True)
class JwtConfig:
    issuer: str = key("mpc-service", "required `iss` claim", _check(bool, "must not be empty"))
    audience: str = key("mpc-signer", "required `aud` claim", _check(bool, "must not be empty"))
    leeway_seconds: float = key(
        30.0, "clock skew tolerated on exp/nbf/iat", _check(lambda v: 0 <= v <= 300, "must be in 0..300")
    )
    max_lifetime_seconds: float = key(
        900.0, "longest accepted exp - iat", _check(lambda v: 0 < v <= 86400, "must be in (0, 86400]")
    )
    keys: Mapping[str, Path] = key(
        {"dev": Path("var/certs/jwt.pub")},
        "kid -> verification key file; the key type pins the algorithm: P-256 PEM -> ES256, Ed25519 PEM -> EdDSA, "
        "RSA PEM (>= 2048 bits) -> RS256, a hex secret file (>= 32 bytes) -> HS256",
        lambda v: "must name at least one key" if not v else _ids(v),
    )


@dataclass(frozen=True)
class HmacConfig:
    active_key_id: str = key("dev", "key id this node uses to HMAC its outgoing protocol messages")
    keys: Mapping[str, Path] = key(
        {"dev": Path("var/certs/hmac.key")},
        "key id -> hex secret file (>= 32 bytes)",
        lambda v: "must name at least one key" if not v else _ids(v),
    )
    retired_key_ids: tuple[str, ...] = key(
        [], "key ids still listed in `keys` but rejected on incoming messages (rotation finished)"
    )
    senders: Mapping[str, str] = key(
        {},
        "key id -> the party ids (space-separated) whose messages it may authenticate; a key not "
        "listed may sign for any party",
        lambda v: _ids(v) or _party_lists(v),
    )


def _party_lists(value: Mapping[str, str]) -> str | None:
    if any(not parties.split() for parties in value.values()):
        return "every key id must name at least one party id"
    bad = [p for parties in value.values() for p in parties.split() if not ID_PATTERN.fullmatch(p)]
    return f"invalid party id(s) {bad}: use 1-64 characters of [A-Za-z0-9._:-]" if bad else None


@dataclass(frozen=True)
class EnclaveConfig:
    mode: str = key(
        "embedded",
        "embedded: `serve` starts and supervises the enclave process; external: connect to a running one",
        choices=("embedded", "external"),
    )
    address: str = key(
        "unix://var/enclave.sock", "vsock://CID:PORT, unix://PATH or tcp://127.0.0.1:PORT", _enclave_address
    )
    psk_file: Path | None = key(
        None,
        "hex pre-shared key file (>= 32 bytes) authenticating the enclave channel; required for vsock:// "
        "and tcp://, optional for unix://",
    )
    psk_provisioning: str = key(
        "none",
        "attested: deliver psk_file's key to an enclave that has none yet (the Nitro image), only after "
        "verifying its attestation against expected_pcrs_file; none: the enclave was given the key itself",
        choices=("none", "attested"),
    )
    expected_pcrs_file: Path | None = key(
        None,
        "JSON of the enclave image's measurements (var/pcrs.json from `make eif`); required with "
        "psk_provisioning = attested",
    )
    insecure_no_channel_auth_for_development: bool = key(
        False,
        "DEVELOPMENT ONLY: connect to a vsock:// or tcp:// enclave without channel authentication",
    )
    call_timeout_seconds: float = key(30.0, "time limit of one enclave request", _positive)
    connect_timeout_seconds: float = key(2.0, "time limit of one connection attempt", _positive)
    max_frame_bytes: int = key(
        16 * 1024 * 1024,
        "largest frame on the enclave channel (both directions)",
        _check(lambda v: 1024 <= v <= 256 * 1024 * 1024, "must be in 1024..268435456"),
    )
    health_interval_seconds: float = key(1.0, "how often the host checks that the enclave answers", _positive)
    health_misses: int = key(
        3,
        "consecutive late pings (no answer within the interval) before health turns NOT_SERVING; a refused "
        "or broken connection turns it at once",
        _check(lambda v: 1 <= v <= 100, "must be in 1..100"),
    )
    preparams_sync_seconds: float = key(
        5.0,
        "how often the host stores the enclave's newly sealed pre-parameters and checks for an enclave restart"
        " (then drops the single-use items it burned)",
        _positive,
    )
    aws_credentials: str = key(
        "none",
        "imds: fetch the instance role's credentials from IMDSv2 and push them to the enclave for its "
        "KMS calls (Nitro with KMS sealing); none: push nothing",
        choices=("none", "imds"),
    )
    imds_url: str = key(
        "http://169.254.169.254",
        "instance metadata service base URL (plain http://HOST[:PORT])",
        _check(lambda v: bool(re.fullmatch(r"http://[A-Za-z0-9.\-\[\]:]+", v)), "expected http://HOST[:PORT]"),
    )


@dataclass(frozen=True)
class SessionsConfig:
    deadline_seconds: float = key(120.0, "a session not finished by then fails", _positive)
    max_concurrent: int = key(1000, "running sessions allowed at once", _positive)
    retention_seconds: float = key(
        300.0, "how long a finished session's state and result stay queryable before it is forgotten", _positive
    )
    sweep_interval_seconds: float = key(
        1.0, "how often overdue sessions are failed (and aborted in the enclave) and old ones forgotten", _positive
    )
    retained_max: int = key(
        10_000, "finished sessions kept queryable at most (the oldest are forgotten first)", _positive
    )
    retained_max_bytes: int = key(
        32 * 1024 * 1024,
        "bytes of finished sessions' kept state at most (the oldest are forgotten first)",
        _check(lambda v: v >= 4096, "must be at least 4096"),
    )
    per_caller_max: int = key(
        250, "running sessions one caller (client identity and JWT subject) may have at once", _positive
    )
    per_client_max: int = key(
        0,
        "running sessions one client identity (certificate) may have at once, all its subjects together "
        "(0: only sessions.max_concurrent)",
        _check(lambda v: v >= 0, "must be >= 0"),
    )
    gg20_starts_per_second: float = key(
        10.0,
        "sustained rate of GG20 key generations and presignings (a GG20 signing without a stored "
        "presignature presigns) one caller may start",
        _positive,
    )
    gg20_starts_burst: int = key(20, "how many of those one caller may start at once above the rate", _positive)


@dataclass(frozen=True)
class StorageConfig:
    url: str = key(
        "sqlite:var/signer.db",
        "store URL (signer.storage.open_store): sqlite:PATH (sqlite:///abs/path for an absolute path) or "
        "postgresql://user@host:5432/db; may hold a password, so it is never logged",
        _check(
            lambda v: v.startswith(("sqlite:", "postgresql://", "postgres://")),
            "must start with sqlite: or postgresql://",
        ),
        secret=True,
    )


def _optional_listen(value: str) -> str | None:
    return _listen(value) if value else None


def _consul_address(value: str) -> str | None:
    if not re.fullmatch(r"(https?://)?[A-Za-z0-9.\-\[\]:]+:\d{1,5}", value):
        return "expected http(s)://HOST:PORT of the local Consul agent (e.g. http://127.0.0.1:8500)"
    return None


def _go_duration(value: str) -> str | None:
    if not re.fullmatch(r"(\d+(ms|s|m|h))+", value):
        return "expected a Go duration such as 90s, 10m or 1h"
    return None


@dataclass(frozen=True)
class ConsulConfig:
    enabled: bool = key(False, "register this instance with the local Consul agent")
    address: str = key("http://127.0.0.1:8500", "HTTP(S) address of the local Consul agent", _consul_address)
    token_file: Path | None = key(None, "file holding the Consul ACL token (none: anonymous)")
    service_name: str = key(
        "mpc-signer",
        "Consul service name mpc-service queries",
        _check(lambda v: bool(ID_PATTERN.fullmatch(v)), "use 1-64 characters of [A-Za-z0-9._:-]"),
    )
    service_id: str = key(
        "",
        "this instance's service id, unique per agent (empty: server.node_id)",
        _check(lambda v: not v or bool(ID_PATTERN.fullmatch(v)), "use 1-64 characters of [A-Za-z0-9._:-]"),
    )
    advertise_host: str = key(
        "",
        "address other hosts (and the agent's gRPC check) reach this instance at (empty: the host of "
        "server.listen, which must then not be a wildcard)",
    )
    advertise_port: int = key(
        0,
        "port to advertise (0: the port of server.listen)",
        _check(lambda v: 0 <= v < 65536, "must be in 0..65535"),
    )
    tags: tuple[str, ...] = key([], "service tags")
    ttl_seconds: float = key(15.0, "TTL of the enclave check; the host passes it every third of that", _positive)
    check_interval_seconds: float = key(10.0, "how often Consul calls the gRPC health check (over mTLS)", _positive)
    deregister_critical_after: str = key(
        "10m", "Consul removes an instance whose check stayed critical this long (Go duration)", _go_duration
    )


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = key(
        "",
        "Prometheus scrape endpoint HOST:PORT, plain HTTP on its own port (empty: no metrics endpoint)",
        _optional_listen,
    )
    pool_refresh_seconds: float = key(15.0, "how often the presignature pool sizes are read from the store", _positive)


@dataclass(frozen=True)
class PolicyConfig:
    callback_url: str = key(
        "",
        "signing policy callback https://HOST[:PORT]/PATH asked before every signature (empty: no policy "
        "callback; the enclave's --policy-key decides whether approvals are required)",
        _check(lambda v: not v or v.startswith("https://"), "must be an https:// URL"),
    )
    ca_file: Path | None = key(None, "CA certificate(s) the callback's TLS certificate must chain to (only these)")
    node_key_file: Path | None = key(None, "this node's P-256 private key (PEM) signing its requests to the callback")
    timeout_seconds: float = key(
        5.0,
        "a callback not answering within this fails the signature with DEADLINE_EXCEEDED",
        _check(lambda v: 0 < v <= 120, "must be in (0, 120]"),
    )


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    jwt: JwtConfig = field(default_factory=JwtConfig)
    hmac: HmacConfig = field(default_factory=HmacConfig)
    enclave: EnclaveConfig = field(default_factory=EnclaveConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    consul: ConsulConfig = field(default_factory=ConsulConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    def __repr__(self) -> str:
        s, e = self.server, self.enclave
        return f"Config(listen={s.listen!r}, node_id={s.node_id!r}, enclave={e.mode}:{e.address!r})"


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _keys(section_type: type) -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(section_type)
    return {f.name: (hints[f.name], f) for f in fields(section_type)}


def env_var_name(section: str, name: str) -> str:
    return f"{ENV_PREFIX}{section}_{name}".upper()


def env_var_names() -> list[str]:
    """Every environment variable the configuration accepts (MPC_SIGNER_CONFIG included)."""
    names = [CONFIG_ENV]
    for section, section_type in _sections().items():
        names += [env_var_name(section, name) for name in _keys(section_type)]
    return names


def describe_keys() -> list[tuple[str, str, Any, str]]:
    """(key, env var, default, doc) for every key: the source of the README reference."""
    rows = []
    for section, section_type in _sections().items():
        defaults = section_type()
        for name, (_hint, f) in _keys(section_type).items():
            rows.append((f"{section}.{name}", env_var_name(section, name), getattr(defaults, name), f.metadata["doc"]))
    return rows


def _coerce(hint: Any, raw: Any, from_env: bool) -> Any:
    """Convert a TOML value (or an environment string) to the field's type; TypeError/ValueError
    with a short description otherwise."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):  # `X | None`
        inner = next(a for a in args if a is not type(None))
        if raw is None or (from_env and raw == "") or raw == "":
            return None
        return _coerce(inner, raw, from_env)
    if hint is bool:
        if from_env:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError("expected true or false")
        if not isinstance(raw, bool):
            raise TypeError("expected a boolean")
        return raw
    if hint is int:
        if from_env:
            return int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError("expected an integer")
        return raw
    if hint is float:
        if from_env:
            return float(raw)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise TypeError("expected a number")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise TypeError("expected a string")
        return raw
    if hint is Path:
        if not isinstance(raw, str) or not raw:
            raise TypeError("expected a non-empty path string")
        return Path(raw)
    if origin is tuple:
        items = [s.strip() for s in raw.split(",") if s.strip()] if from_env else raw
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise TypeError("expected a list of strings")
        return tuple(items)
    if origin in (Mapping, dict):
        if from_env:
            pairs = {}
            for item in (s.strip() for s in raw.split(",") if s.strip()):
                k, sep, v = item.partition("=")
                if not sep or not k.strip() or not v.strip():
                    raise ValueError("expected key=value pairs separated by commas")
                pairs[k.strip()] = v.strip()
            raw = pairs
        if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
            raise TypeError("expected a table of non-empty strings")
        value_type = args[1] if args else str
        return types.MappingProxyType({k: (Path(v) if value_type is Path else v) for k, v in raw.items()})
    raise TypeError(f"unsupported type {hint}")


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Defaults <- file <- environment. `path` defaults to $MPC_SIGNER_CONFIG (no file if unset)."""
    env = dict(os.environ if environ is None else environ)
    if path is None:
        path = env.get(CONFIG_ENV) or None
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                file_values = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None

    sections = _sections()
    for section in file_values:
        if section not in sections:
            raise ConfigError(f"{section}: unknown section in {path} (known: {', '.join(sections)})")
        if not isinstance(file_values[section], dict):
            raise ConfigError(f"{section}: must be a table in {path}")
    known_env = set(env_var_names())
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in known_env:
            raise ConfigError(f"{name}: unknown MPC_SIGNER_* environment variable")

    built: dict[str, Any] = {}
    for section, section_type in sections.items():
        keys = _keys(section_type)
        given = file_values.get(section, {})
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
        built[section] = section_type(**values)
    config = Config(**built)
    _cross_check(config)
    return config


def _validate(section: str, name: str, f: Any, value: Any, source: str) -> None:
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


def consul_advertise(config: Config) -> tuple[str, int]:
    """The (host, port) this instance registers in Consul."""
    host, _, port = config.server.listen.rpartition(":")
    c = config.consul
    return (c.advertise_host or host.strip("[]"), c.advertise_port or int(port))
