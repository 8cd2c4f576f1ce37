"""What the host's configuration holds: one frozen dataclass per section, each key declared
with its default, one line of documentation and the check its value must pass.

`signer.config.loader` fills them from the TOML file and the environment.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from door.address import parse_address

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")


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


def sections() -> dict[str, type]:
    """Section name -> its dataclass, in declaration order."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def section_keys(section_type: type) -> dict[str, tuple[Any, Field[Any]]]:
    """Key name -> (its type, its field) for one section's dataclass."""
    hints = typing.get_type_hints(section_type)
    return {f.name: (hints[f.name], f) for f in fields(section_type)}


def consul_advertise(config: Config) -> tuple[str, int]:
    """The (host, port) this instance registers in Consul."""
    host, _, port = config.server.listen.rpartition(":")
    c = config.consul
    return (c.advertise_host or host.strip("[]"), c.advertise_port or int(port))
