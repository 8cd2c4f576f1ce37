"""The signer host process: grpc.aio over mutual TLS, health and reflection, the enclave client,
the health watcher and (enclave mode "embedded") the enclave child process.

TLS is grpc core's (BoringSSL): `ssl_server_credentials(require_client_auth=True)` requires and
verifies a client certificate against `tls.ca_file`, including its validity period. grpc core
negotiates TLS 1.2 or 1.3 and prefers 1.3; its Python API offers no knob for the version range or
for certificate pinning, so neither is configurable here (cipher suites can only be narrowed
process-wide with the GRPC_SSL_CIPHER_SUITES environment variable). Client identity is then
checked in Python against `tls.allowed_clients` (signer.auth.mtls).

Start-up opens (and migrates) the store before serving, then starts the metrics endpoint and the
Consul registrar (both optional). Shutdown order: health NOT_SERVING -> deregister from Consul ->
stop accepting and give in-flight RPCs `grace_seconds` -> close the enclave channel -> stop the
embedded enclave -> stop the metrics endpoint -> close the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2, signer_pb2_grpc
from signer.api.operations import Operations
from signer.api.pipeline import RpcPipeline
from signer.api.public_schema import public_pool
from signer.api.servicer import SignerServicer
from signer.auth.envelope import HmacKeyRing
from signer.auth.interceptor import Authenticator
from signer.auth.jwt import JwtVerifier, VerificationKey, load_verification_key, read_hex_secret
from signer.auth.mtls import ClientAllowlist
from signer.config.loader import ConfigError
from signer.config.schema import Config, consul_advertise
from signer.discovery import ConsulRegistrar, ConsulSettings
from signer.link.client import EnclaveClient, load_psk, parse_address
from signer.link.credentials import CredentialsPusher, ImdsClient
from signer.link.health import HEALTH_SERVICES, SERVICE_NAME, EnclaveStatus, HealthWatcher
from signer.link.metered import MeteredEnclaveClient
from signer.link.preparams import PreparamsKeeper
from signer.link.provisioning import attested_offer_verifier, load_expected_pcrs
from signer.link.supervisor import EmbeddedEnclave
from signer.metrics import Metrics
from signer.policy.approvals import attach_approval
from signer.policy.client import PolicyCallbackConfig, PolicyClient
from signer.sessions.quotas import CallerQuotas
from signer.sessions.registry import HostSession, Sessions
from signer.sessions.retention import FinishedSessions
from signer.storage import Store, open_store
from signer.tasks import cancel_quietly

log = logging.getLogger(__name__)


def _read(key: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None


def _load(key: str, loader: Callable[[Path], Any], path: Path) -> Any:
    try:
        return loader(path)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{key}: {path}: {exc}") from None


def _consul_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return _read("consul.token_file", path).decode("ascii").strip() or None
    except UnicodeDecodeError:
        raise ConfigError(f"consul.token_file: {path} does not hold an ASCII token") from None


@dataclass(frozen=True)
class Credentials:
    """Everything the server reads from files at start-up, loaded once (errors name the key)."""

    tls_ca: bytes
    tls_cert: bytes
    tls_key: bytes = field(repr=False)
    jwt_keys: dict[str, VerificationKey] = field(repr=False)
    hmac: HmacKeyRing = field(repr=False)
    enclave_psk: bytes | None = field(repr=False)
    enclave_pcrs: dict[int, bytes] | None = field(default=None, repr=False)
    consul_token: str | None = field(default=None, repr=False)
    policy: PolicyClient | None = field(default=None, repr=False)

    @classmethod
    def load(cls, config: Config) -> Credentials:
        jwt_keys = {kid: _load(f"jwt.keys.{kid}", load_verification_key, p) for kid, p in config.jwt.keys.items()}
        hmac_keys = {kid: _load(f"hmac.keys.{kid}", read_hex_secret, p) for kid, p in config.hmac.keys.items()}
        psk = _load("enclave.psk_file", load_psk, config.enclave.psk_file) if config.enclave.psk_file else None
        return cls(
            tls_ca=_read("tls.ca_file", config.tls.ca_file),
            tls_cert=_read("tls.cert_file", config.tls.cert_file),
            tls_key=_read("tls.key_file", config.tls.key_file),
            jwt_keys=jwt_keys,
            hmac=HmacKeyRing(
                hmac_keys,
                config.hmac.active_key_id,
                frozenset(config.hmac.retired_key_ids),
                senders={kid: frozenset(parties.split()) for kid, parties in config.hmac.senders.items()},
            ),
            enclave_psk=psk,
            enclave_pcrs=(
                _load("enclave.expected_pcrs_file", load_expected_pcrs, config.enclave.expected_pcrs_file)
                if config.enclave.psk_provisioning == "attested" and config.enclave.expected_pcrs_file
                else None
            ),
            consul_token=_consul_token(config.consul.token_file),
            policy=_policy_client(config),
        )


def _policy_client(config: Config) -> PolicyClient | None:
    p = config.policy
    if not p.callback_url:
        return None
    assert p.ca_file is not None and p.node_key_file is not None  # config cross-check

    def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("not a P-256 private key")
        return key

    node_key = _load("policy.node_key_file", load_key, p.node_key_file)
    _read("policy.ca_file", p.ca_file)
    try:
        return PolicyClient(
            PolicyCallbackConfig(
                url=p.callback_url,
                ca_file=p.ca_file,
                node_id=config.server.node_id,
                node_key=node_key,
                timeout=p.timeout_seconds,
            )
        )
    except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError: a CA file that is no PEM
        raise ConfigError(f"policy: {exc}") from None


class StoredSessionIds:
    """The sessions layer's durable record of used session ids, in the store's session_ids table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _open(self) -> Store:
        return self._store

    async def claim(self, session_id: str, kind: int) -> bool:
        name = epb.SessionKind.Name(kind).removeprefix("SESSION_KIND_").lower()
        return await self._open().claim_session_id(session_id, name)

    async def release(self, session_id: str) -> None:
        await self._open().release_session_id(session_id)

    async def used(self, session_id: str) -> bool:
        return await self._open().session_id_used(session_id)


class SignerServer:
    """Composition of the host: `await SignerServer.open(...)`, `start()`, then `wait()`/`stop()`.

    The store is opened first and handed to what needs it, so nothing holds a store that might
    not be there yet."""

    @classmethod
    async def open(cls, config: Config, credentials: Credentials) -> SignerServer:
        store = await open_store(config.storage.url)
        try:
            return cls(config, credentials, store)
        except BaseException:
            await store.close()
            raise

    def __init__(self, config: Config, credentials: Credentials, store: Store) -> None:
        self.config = config
        self.store = store
        c = config
        self.metrics = Metrics()
        self.enclave: EnclaveClient = MeteredEnclaveClient(
            parse_address(c.enclave.address),
            metrics=self.metrics,
            psk=credentials.enclave_psk,
            verify_offer=(
                attested_offer_verifier(credentials.enclave_pcrs) if credentials.enclave_pcrs is not None else None
            ),
            allow_unauthenticated=c.enclave.insecure_no_channel_auth_for_development,
            max_frame_bytes=c.enclave.max_frame_bytes,
            call_timeout=c.enclave.call_timeout_seconds,
            connect_timeout=c.enclave.connect_timeout_seconds,
        )
        self.embedded = (
            EmbeddedEnclave(c.enclave.address, c.enclave.psk_file, c.enclave.max_frame_bytes)
            if c.enclave.mode == "embedded"
            else None
        )
        self.status = EnclaveStatus()
        self.health = health_aio.HealthServicer()
        self.watcher = HealthWatcher(
            self.enclave, self.health, self.status, c.enclave.health_interval_seconds, c.enclave.health_misses
        )
        self.metrics.enclave_up.set_function(lambda: 1.0 if self.status.up else 0.0)
        self.registrar = self._registrar(credentials) if c.consul.enabled else None
        self._metrics_http: Any = None
        self._pool_task: asyncio.Task[None] | None = None
        self.preparams = PreparamsKeeper(
            self.enclave, self.store, c.enclave.preparams_sync_seconds, burned=self.metrics.burned
        )
        self._preparams_task: asyncio.Task[None] | None = None
        policy = credentials.policy
        self.operations = Operations(
            self.store,
            approve=(lambda start: attach_approval(policy, start)) if policy is not None else None,
            burned=self.metrics.burned,
        )
        self.aws_credentials = (
            CredentialsPusher(ImdsClient(c.enclave.imds_url), self.enclave)
            if c.enclave.aws_credentials == "imds"
            else None
        )
        s = c.sessions
        retained = FinishedSessions(
            max_age=s.retention_seconds,
            max_count=s.retained_max,
            max_bytes=s.retained_max_bytes,
            evicted=self.metrics.evicted,
        )
        self.metrics.finished_retained.set_function(lambda: len(retained))
        self.metrics.finished_retained_bytes.set_function(lambda: retained.bytes)
        self.sessions = Sessions(
            self.enclave,
            credentials.hmac,
            deadline_seconds=s.deadline_seconds,
            max_concurrent=s.max_concurrent,
            retained=retained,
            quotas=CallerQuotas(
                per_caller_max=s.per_caller_max,
                per_client_max=s.per_client_max,
                gg20_starts_per_second=s.gg20_starts_per_second,
                gg20_starts_burst=s.gg20_starts_burst,
                refused=self.metrics.quota_refused,
            ),
            refused=self.metrics.quota_refused,
            persist=self.operations.persist,
            finished=self._session_finished,
            ids=StoredSessionIds(self.store),
        )
        self.sweeper: asyncio.Task[None] | None = None
        verifier = JwtVerifier(
            credentials.jwt_keys,
            issuer=c.jwt.issuer,
            audience=c.jwt.audience,
            leeway_seconds=c.jwt.leeway_seconds,
            max_lifetime_seconds=c.jwt.max_lifetime_seconds,
        )
        allowlist = ClientAllowlist(c.tls.allowed_clients, c.tls.allow_uri_sans)
        self.server = grpc.aio.server(
            # One composed wrapper: metrics, log context, error mapping, auth (order in its module).
            interceptors=[RpcPipeline(self.metrics, Authenticator(allowlist, verifier))],
            options=[
                ("grpc.max_receive_message_length", c.server.max_message_bytes),
                ("grpc.max_send_message_length", c.server.max_message_bytes),
            ],
        )
        signer_pb2_grpc.add_SignerServiceServicer_to_server(
            SignerServicer(
                node_id=c.server.node_id,
                enclave=self.enclave,
                sessions=self.sessions,
                status=self.status,
                operations=self.operations,
                call_done=self.metrics.rpc_done,
                token_leeway_seconds=c.jwt.leeway_seconds,
                key_retired=self.metrics.key_retired,
            ),
            self.server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.server,
            pool=public_pool((signer_pb2.DESCRIPTOR, health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR)),
        )
        creds = grpc.ssl_server_credentials(
            [(credentials.tls_key, credentials.tls_cert)],
            root_certificates=credentials.tls_ca,
            require_client_auth=True,
        )
        self.port = self.server.add_secure_port(c.server.listen, creds)
        if self.port == 0:
            raise ConfigError(f"server.listen: cannot listen on {c.server.listen}")

    async def _session_finished(self, session: HostSession) -> None:
        done = session.state == signer_pb2.SESSION_STATE_DONE
        self.metrics.session_finished(session.start.protocol, session.kind, done)
        await self.operations.audit(session)

    def _registrar(self, credentials: Credentials) -> ConsulRegistrar:
        c = self.config.consul
        host, port = consul_advertise(self.config)
        settings = ConsulSettings(
            address=c.address,
            service_id=c.service_id or self.config.server.node_id,
            advertise_host=host,
            advertise_port=port,
            service_name=c.service_name,
            tags=c.tags,
            meta={"node_id": self.config.server.node_id},
            token=credentials.consul_token,
            ttl_seconds=c.ttl_seconds,
            grpc_interval_seconds=c.check_interval_seconds,
            deregister_critical_after=c.deregister_critical_after,
        )

        async def enclave_alive() -> bool:
            # The health watcher's latest verdict: one source of truth for gRPC health and Consul.
            return self.status.up

        return ConsulRegistrar(settings, enclave_alive)

    async def start(self) -> None:
        for name in HEALTH_SERVICES:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.config.metrics.listen:
            # Bound before anything is started, so a taken port fails the start cleanly.
            host, _, port = self.config.metrics.listen.rpartition(":")
            try:
                self._metrics_http = self.metrics.serve(host.strip("[]"), int(port))
            except OSError as exc:
                await self.store.close()
                where = self.config.metrics.listen
                raise ConfigError(f"metrics.listen: cannot listen on {where}: {exc.strerror}") from None
        if self.embedded is not None:
            await self.embedded.start()
        await self.server.start()
        self.watcher.start()
        if self.aws_credentials is not None:
            self.aws_credentials.start()
        self.sweeper = asyncio.create_task(self.sessions.run_sweeper(self.config.sessions.sweep_interval_seconds))
        self._preparams_task = asyncio.create_task(self.preparams.run())
        if self._metrics_http is not None:
            self._pool_task = asyncio.create_task(
                self.metrics.refresh_pools_forever(self.store, self.enclave, self.config.metrics.pool_refresh_seconds)
            )
        if self.registrar is not None:
            await self.registrar.start()
        log.info(
            "mpc-signer %s serving on %s (enclave %s, %s)",
            self.config.server.node_id,
            self.config.server.listen,
            self.config.enclave.mode,
            self.enclave.address,
        )

    async def wait(self) -> None:
        await self.server.wait_for_termination()

    async def stop(self) -> None:
        log.info("shutting down")
        await self.health.enter_graceful_shutdown()
        await self.watcher.stop()
        if self.registrar is not None:
            await self.registrar.stop()
        await self.server.stop(self.config.server.grace_seconds)
        await cancel_quietly(self.sweeper)
        await cancel_quietly(self._preparams_task)
        if self.aws_credentials is not None:
            await self.aws_credentials.stop()
        await self.sessions.close()
        await self.enclave.close()
        if self.embedded is not None:
            await self.embedded.stop()
        await cancel_quietly(self._pool_task)
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
        await self.store.close()


async def serve(config: Config, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when it is not given)."""
    server = await SignerServer.open(config, Credentials.load(config))
    await server.start()
    if stop is None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
