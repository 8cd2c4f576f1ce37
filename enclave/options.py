"""Command-line options of the enclave process for its engine, sealing and TEE, and their checking.

Part of the composition root with enclave/__main__.py: `open_parts` checks the options and opens
what they name (sealer, policy, attestor, unseal state); `__main__` builds the engine and the
service from those parts. Nothing below the composition root reads options.

    --sealing-key-file PATH         32-byte key-encryption key (mode 0600); metadata (key check)
                                    at PATH.meta.json unless --sealing-meta says otherwise
    --sealing-passphrase-file PATH  passphrase (first line) for scrypt; needs --sealing-meta
    --sealing-meta PATH             sealer metadata file (salt, scrypt cost, key check)
    --sealing-shares PATH           t-of-n unseal: the share file (wrapped data key); the process
                                    starts sealed until operators enter their shares (default:
                                    MPC_ENCLAVE_SEALING_SHARES; enclave/unseal/)
    --generate-sealing-key          create the key file (or passphrase metadata) if missing (dev)
    --max-sessions N                running sessions allowed at once
    --preparams-pool-size N         Paillier pre-parameter sets kept ready for GG20 key generation
    --preparams-wait-seconds S      how long a GG20 key generation may wait for one (default 5; on
                                    the event loop, holding no worker); RESOURCE_EXHAUSTED at once
                                    when the pool cannot make one in that time
    --max-held-bytes N              peers' messages for later rounds all sessions may have to hold
                                    (each session reserves its share at start; default 256 MiB)
    --policy-key PATH               P-256 public key (PEM) of the signing policy; when given,
                                    every SIGN needs an approval signed by it
    --policy-key-b64 B64            the same key as base64 DER (default: MPC_ENCLAVE_POLICY_KEY,
                                    which the image fixes at build time)
    --allow-presigned-bare-digest   sign a bare 32-byte digest (message_hash RAW) with a
                                    presignature; off by default, since the enclave then signs with
                                    a nonce fixed in advance a hash whose message it never saw
                                    (CVE-2025-66017; README "Presignatures bound to what they sign")
    --allow-reshare-without-policy  deal in a reshare or help a repair with no policy key; off
                                    by default, since the host and relay then decide who receives
                                    this party's shares (README "Reshare (recovery)")
    --attestation none|nitro        none (default): no TEE, said plainly; nitro: documents from
                                    the Nitro Secure Module (/dev/nsm), NSM entropy mixed in at start
    --kms-key-id ARN                seal with AWS KMS (needs --attestation nitro); a local key, if
                                    also configured, still unseals older blobs (migration)
    --kms-region REGION             region of the KMS key (default: taken from the key ARN)
    --kms-proxy-port PORT           vsock port of the parent's vsock-proxy to KMS (default 8000)

In the enclave image (enclave/Dockerfile) --kms-key-id and --kms-region default to the
environment variables MPC_ENCLAVE_KMS_KEY_ID and MPC_ENCLAVE_KMS_REGION, fixed at image build
time, since a Nitro enclave takes no arguments at run time.

With no sealing option (no key file, passphrase or KMS key) the process uses the development key
file var/sealing.key (created on first start), except on vsock (a Nitro enclave), where it
refuses to start: a key generated inside an enclave's memory-backed file system would be lost
with every restart, and with it every share sealed under it. A wrong key or passphrase (the
metadata's key check fails) stops the process at start with a clear message.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from enclave.engine.engine import EngineConfig
from enclave.policy import PolicyVerifier, load_policy_key
from enclave.sealing import (
    LocalSealer,
    MultiSealer,
    Sealer,
    SealerConfigError,
    default_metadata_path,
    generate_key_file,
    init_passphrase,
)
from enclave.tee.attestation import (
    NITRO_MODE,
    NO_ATTESTATION_STATEMENT,
    NONE_MODE,
    AttestationUnavailable,
    Attestor,
    NitroAttestor,
    NoneAttestor,
    mix_nsm_entropy,
)
from enclave.tee.credentials import CredentialsHolder
from enclave.tee.kms import KmsSealer
from enclave.tee.kms_http import DEFAULT_PROXY_PORT, Connector, KmsHttpClient, vsock_connector
from enclave.unseal.unsealer import GatedSealer, Unsealer

log = logging.getLogger(__name__)

DEV_KEY_FILE = Path("var/sealing.key")
# The enclave process answers a key generation it cannot serve soon at once (the host or relay
# retries); an engine embedded in a caller's process (EngineConfig's default) waits longer.
PROCESS_PREPARAMS_WAIT_SECONDS = 5.0


class SetupError(Exception):
    """The engine cannot be configured as asked; the message says why (no secrets)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = EngineConfig()
    g = parser.add_argument_group("sessions and sealing")
    source = g.add_mutually_exclusive_group()
    source.add_argument("--sealing-key-file", type=Path, help="32-byte key-encryption key file (mode 0600)")
    source.add_argument("--sealing-passphrase-file", type=Path, help="file whose first line is the sealing passphrase")
    source.add_argument(
        "--sealing-shares",
        type=Path,
        default=os.environ.get("MPC_ENCLAVE_SEALING_SHARES") or None,
        help="t-of-n unseal: share file of the wrapped data key; starts sealed (mpc-signer unseal-init / unseal)",
    )
    g.add_argument("--sealing-meta", type=Path, help="sealer metadata file (default for a key file: KEY.meta.json)")
    g.add_argument(
        "--generate-sealing-key", action="store_true", help="create the sealing key (or passphrase metadata) if missing"
    )
    g.add_argument("--max-sessions", type=int, default=defaults.max_sessions)
    g.add_argument("--preparams-pool-size", type=int, default=defaults.preparams_pool_size)
    g.add_argument(
        "--preparams-wait-seconds",
        type=float,
        default=PROCESS_PREPARAMS_WAIT_SECONDS,
        help="how long a GG20 key generation may wait for pre-parameters (on the event loop); refused at once"
        " with RESOURCE_EXHAUSTED when the pool cannot make them in that time",
    )
    g.add_argument(
        "--max-held-bytes",
        type=int,
        default=defaults.max_held_bytes,
        help="bytes of peers' messages for later rounds all sessions may have to hold; each session reserves"
        " its bound at start (RESOURCE_EXHAUSTED when the running ones reserved it all)",
    )
    policy = g.add_mutually_exclusive_group()
    policy.add_argument("--policy-key", type=Path, help="P-256 public key (PEM) whose approval every SIGN needs")
    policy.add_argument(
        "--policy-key-b64",
        default=os.environ.get("MPC_ENCLAVE_POLICY_KEY") or None,
        help="the same key as base64 DER (SubjectPublicKeyInfo), e.g. fixed in the image at build time",
    )
    g.add_argument(
        "--policy-boot-fence",
        action="store_true",
        help="refuse approvals an earlier enclave boot could have accepted (expiring within the maximum"
        " approval lifetime of this start): closes approval replay across restarts; approvals shorter"
        " than that lifetime are refused for that long after a start",
    )
    g.add_argument(
        "--allow-presigned-bare-digest",
        action="store_true",
        help="UNSAFE: sign a bare digest (message_hash RAW) with a presignature; the enclave then signs, with a"
        " nonce fixed in advance, a hash whose message it never saw (CVE-2025-66017)",
    )
    g.add_argument(
        "--allow-reshare-without-policy",
        action="store_true",
        help="UNSAFE: deal in a reshare or help a repair with no policy configured; the host and relay then"
        " decide who receives this party's shares",
    )
    t = parser.add_argument_group("TEE")
    t.add_argument(
        "--attestation",
        choices=(NONE_MODE, NITRO_MODE),
        default=NONE_MODE,
        help="none: no TEE (said plainly); nitro: AWS Nitro Secure Module",
    )
    t.add_argument(
        "--kms-key-id",
        default=os.environ.get("MPC_ENCLAVE_KMS_KEY_ID") or None,
        help="KMS key ARN to seal with (needs --attestation nitro)",
    )
    t.add_argument(
        "--kms-region",
        default=os.environ.get("MPC_ENCLAVE_KMS_REGION") or None,
        help="region of the KMS key (default: from the ARN)",
    )
    t.add_argument(
        "--kms-proxy-port",
        type=int,
        default=DEFAULT_PROXY_PORT,
        help="vsock port of the parent's vsock-proxy to KMS (parent CID 3)",
    )


@dataclass(frozen=True)
class EngineParts:
    """What `open_parts` checked before the process listens."""

    sealer: Sealer
    policy: PolicyVerifier | None
    config: EngineConfig
    attestor: Attestor
    # Where the host's SetAwsCredentials land; None unless sealing with KMS.
    credentials: CredentialsHolder | None = None
    # The t-of-n unseal state; None unless --sealing-shares (then `sealer` waits for it).
    unsealer: Unsealer | None = None


def make_attestor(mode: str) -> Attestor:
    """The attestor for `--attestation`. Tests replace this function in their own entry point
    (tests/tee/fixture_enclave.py) to attest with a test CA; no option of the product does."""
    if mode == NONE_MODE:
        return NoneAttestor()
    try:
        return NitroAttestor()
    except AttestationUnavailable as exc:
        raise SetupError(f"--attestation nitro: {exc}") from None


def open_parts(args: argparse.Namespace) -> EngineParts:
    try:
        config = EngineConfig(
            max_sessions=args.max_sessions,
            preparams_pool_size=args.preparams_pool_size,
            preparams_wait_seconds=args.preparams_wait_seconds,
            max_held_bytes=args.max_held_bytes,
            allow_presigned_bare_digest=getattr(args, "allow_presigned_bare_digest", False),
            allow_reshare_without_policy=getattr(args, "allow_reshare_without_policy", False),
        )
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    attestor = make_attestor(args.attestation)
    if isinstance(attestor, NitroAttestor):
        try:
            mix_nsm_entropy(attestor)
        except (AttestationUnavailable, OSError) as exc:
            raise SetupError(f"cannot mix NSM entropy into the kernel pool: {exc}") from None
        log.info("attestation mode nitro: NSM entropy mixed into the kernel pool")
    elif attestor.mode == NONE_MODE:
        log.warning("%s", NO_ATTESTATION_STATEMENT)
    if args.listen.startswith("vsock://") and attestor.mode == NONE_MODE:
        log.warning("listening on vsock without --attestation nitro: fine for testing; nothing attests this process")
    if config.allow_presigned_bare_digest:
        log.warning("--allow-presigned-bare-digest: bare digests are signed with presignatures (CVE-2025-66017)")
    if config.allow_reshare_without_policy and not (args.policy_key or args.policy_key_b64):
        log.warning("--allow-reshare-without-policy: the host and relay decide who receives this party's shares")
    credentials = CredentialsHolder() if args.kms_key_id else None
    unsealer = _unsealer(args, attestor)
    sealer = GatedSealer(unsealer) if unsealer is not None else _sealer(args, attestor, credentials)
    policy = _policy(args.policy_key, args.policy_key_b64, getattr(args, "policy_boot_fence", False))
    return EngineParts(sealer, policy, config, attestor, credentials, unsealer)


def _sealer(args: argparse.Namespace, attestor: Attestor, credentials: CredentialsHolder | None) -> Sealer:
    if not args.kms_key_id:
        return _local_sealer(args)
    assert credentials is not None
    region = args.kms_region or _region_from_arn(args.kms_key_id)
    if not 0 < args.kms_proxy_port < 2**32:
        raise SetupError("--kms-proxy-port must be a vsock port number")
    try:
        client = KmsHttpClient(region, credentials.current, connector=kms_connector(args.kms_proxy_port))
        kms = KmsSealer(client, args.kms_key_id, attestor)
    except (ValueError, SealerConfigError) as exc:
        raise SetupError(f"KMS sealing: {exc}") from None
    others: list[Sealer] = []
    if args.sealing_key_file is not None or args.sealing_passphrase_file is not None:
        others.append(_local_sealer(args))
    migration = " (the local key still unseals older blobs)" if others else ""
    log.info("sealing with KMS key %s in %s%s", args.kms_key_id, region, migration)
    return MultiSealer(kms, others)


def _unsealer(args: argparse.Namespace, attestor: Attestor) -> Unsealer | None:
    path: Path | None = getattr(args, "sealing_shares", None)
    if path is None:
        return None
    if args.kms_key_id:
        raise SetupError("--sealing-shares is the local sealer's t-of-n unseal; it does not combine with --kms-key-id")
    if args.sealing_key_file is not None or args.sealing_passphrase_file is not None:
        raise SetupError(
            "--sealing-shares, --sealing-key-file and --sealing-passphrase-file are three sources of one "
            "sealing key: choose one"
        )
    if args.listen.startswith("vsock://") or attestor.mode == NITRO_MODE:
        raise SetupError(
            "--sealing-shares keeps its share file on the enclave's file system, which a Nitro enclave "
            "loses at every restart: seal with --kms-key-id there"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        unsealer = Unsealer(path)
    except OSError as exc:
        raise SetupError(f"--sealing-shares {path}: {exc.strerror}") from None
    except SealerConfigError as exc:
        raise SetupError(str(exc)) from None
    f = unsealer.file
    if f is None:
        log.warning("no share file at %s: sealed until one is created (mpc-signer unseal-init)", path)
    else:
        log.warning(
            "sealed: waiting for %d of %d operator shares of set %s (mpc-signer unseal)",
            f.current.threshold,
            f.current.shares,
            f.current.set_hex,
        )
    return unsealer


def kms_connector(port: int) -> Connector:
    """How the KMS client reaches the parent's vsock-proxy. Tests replace this in their own entry
    point to reach a local TLS stand-in for KMS; TLS and SigV4 stay the production code."""
    return vsock_connector(port=port)


def _region_from_arn(key_id: str) -> str:
    parts = key_id.split(":")
    if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "kms" and parts[3]:
        return parts[3]
    raise SetupError("--kms-region is required when --kms-key-id is not a full key ARN")


def _local_sealer(args: argparse.Namespace) -> Sealer:
    try:
        if args.sealing_passphrase_file is not None:
            return _passphrase_sealer(args.sealing_passphrase_file, args.sealing_meta, args.generate_sealing_key)
        key_file = args.sealing_key_file
        generate = args.generate_sealing_key
        if key_file is None:
            if args.listen.startswith("vsock://"):
                raise SetupError(
                    "no sealing key configured (--kms-key-id, --sealing-key-file or --sealing-passphrase-file)"
                )
            key_file, generate = DEV_KEY_FILE, True
            log.warning("no sealing key configured: using the development key file %s", key_file)
        meta = args.sealing_meta or default_metadata_path(key_file)
        if generate and not key_file.exists() and not meta.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                sealer = generate_key_file(key_file, meta)
                log.warning("generated a new sealing key in %s", key_file)
                return sealer
            except SealerConfigError:
                # Another process started at the same moment made it: use theirs once complete.
                time.sleep(0.5)
        return LocalSealer.from_key_file(key_file, meta)
    except SealerConfigError as exc:
        raise SetupError(str(exc)) from None


def _passphrase_sealer(path: Path, meta: Path | None, generate: bool) -> Sealer:
    if meta is None:
        raise SetupError("--sealing-passphrase-file needs --sealing-meta")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read the sealing passphrase file {path}: {type(exc).__name__}") from None
    passphrase = lines[0] if lines else ""
    if not passphrase:
        raise SetupError(f"the sealing passphrase file {path} is empty")
    if generate and not meta.exists():
        log.warning("created new passphrase sealer metadata in %s", meta)
        return init_passphrase(meta, passphrase)
    return LocalSealer.from_passphrase(meta, passphrase)


def _policy(path: Path | None, der_b64: str | None = None, boot_fence: bool = False) -> PolicyVerifier | None:
    if der_b64:
        try:
            return PolicyVerifier(load_policy_key(base64.b64decode(der_b64, validate=True)), boot_fence=boot_fence)
        except (ValueError, binascii.Error) as exc:
            raise SetupError(f"policy key (base64 DER): {exc}") from None
    if path is None:
        return None
    try:
        return PolicyVerifier(load_policy_key(path.read_bytes()), boot_fence=boot_fence)
    except OSError as exc:
        raise SetupError(f"cannot read the policy key {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SetupError(f"policy key {path}: {exc}") from None
