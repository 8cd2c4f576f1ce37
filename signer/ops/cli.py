"""Operator subcommands over the configured store and enclave, registered by `signer.cli`:

    mpc-signer audit [--key-id K] [--operation OP] [--since TIME] [--limit N] [--config F]
    mpc-signer backup export FILE [--hmac-key-file F] [--config F]
    mpc-signer backup import FILE [--hmac-key-file F] [--restore-presignatures] [--revive KEY_ID ...] [--config F]
    mpc-signer enclave-ping [--address URI] [--psk-file F] [--expected-pcrs-file F] [--timeout S] [--config F]
                            (with PCRs, this delivers the key to a keyless enclave whose
                            attestation matches them, as the host would: `make run-enclave`)
    mpc-signer validate [--key-id K ...] [--party-id P] [--address URI] [--psk-file F] [--config F]
                            every key of the store (or those named) checked by the enclave
                            (ValidateKey); one JSON line per key, exit status 1 if any is not valid
    mpc-signer unseal-status | unseal-init | unseal | rekey   operator shares (signer.ops.unseal)

They open the store named by `storage.url` directly (the service may keep running: both backends
take concurrent writers), and they print machine-readable output: audit records as JSON lines,
backup reports as one JSON object. Exit status: 0 success, 1 refused or failed (the reason on
stderr), 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signer.config.loader import ConfigError, load_config
from signer.config.schema import Config


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _fail(message: str) -> int:
    print(f"mpc-signer: {message}", file=sys.stderr)
    return 1


def _since(text: str) -> datetime:
    """ISO 8601 time (`2026-01-31`, `2026-01-31T12:00:00Z`); a time without a zone is UTC."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def audit_json(record: Any) -> str:
    return json.dumps(
        {
            "id": record.id,
            "time": record.time.isoformat() if record.time else None,
            "operation": record.operation,
            "result": record.result,
            "caller": record.caller,
            "key_id": record.key_id,
            "session_id": record.session_id,
            "digest": record.digest,
            "culprits": list(record.culprits),
            "reason": record.reason,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


async def _with_store(config: Config, action: Any) -> int:
    from signer.storage import open_store

    store = await open_store(config.storage.url)
    try:
        result: int = await action(store)
        return result
    finally:
        await store.close()


def cmd_audit(args: argparse.Namespace) -> int:
    from signer.storage import AuditQuery, StorageError

    config = _config(args)
    try:
        query = AuditQuery(key_id=args.key_id, operation=args.operation, since=args.since, limit=args.limit)
    except StorageError as exc:
        print(f"mpc-signer audit: {exc}", file=sys.stderr)
        return 2

    async def run(store: Any) -> int:
        for record in await store.query_audit(query):
            print(audit_json(record))
        return 0

    try:
        return asyncio.run(_with_store(config, run))
    except StorageError as exc:
        return _fail(f"audit: {type(exc).__name__}: {exc}")


def _hmac_key(path: str | None) -> bytes | None:
    """The backup HMAC key: a file of hex (as `mpc-signer certs` writes keys) or raw bytes."""
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--hmac-key-file: cannot read {path}: {exc.strerror}") from None
    text = data.strip()
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return data


def cmd_backup_export(args: argparse.Namespace) -> int:
    from signer.storage import StorageError
    from signer.storage.backup import export_backup

    config = _config(args)
    key = _hmac_key(args.hmac_key_file)

    async def run(store: Any) -> int:
        report = await export_backup(store, Path(args.file), hmac_key=key, caller=args.caller)
        print(
            json.dumps(
                {
                    "file": str(report.path),
                    "keys": report.keys,
                    "presignatures": report.presignatures,
                    "sha256": report.sha256,
                    "authenticated": report.authenticated,
                }
            )
        )
        return 0

    try:
        return asyncio.run(_with_store(config, run))
    except FileExistsError as exc:
        return _fail(f"backup export: {exc}")
    except (StorageError, ValueError, OSError) as exc:
        return _fail(f"backup export: {type(exc).__name__}: {exc}")


def cmd_backup_import(args: argparse.Namespace) -> int:
    from signer.storage import StorageError
    from signer.storage.backup import import_backup

    config = _config(args)
    key = _hmac_key(args.hmac_key_file)
    if not Path(args.file).is_file():
        return _fail(f"backup import: {args.file}: no such file")

    async def run(store: Any) -> int:
        report = await import_backup(
            store,
            Path(args.file),
            hmac_key=key,
            restore_presignatures=args.restore_presignatures,
            revive=args.revive or (),
            caller=args.caller,
        )
        print(
            json.dumps(
                {
                    "keys_imported": list(report.keys_imported),
                    "keys_skipped": list(report.keys_skipped),
                    "presignatures_imported": report.presignatures_imported,
                    "presignatures_skipped": report.presignatures_skipped,
                    "presignatures_not_restored": report.presignatures_not_restored,
                    "keys_revived": list(report.keys_revived),
                    "keys_left_active": list(report.keys_left_active),
                }
            )
        )
        return 0

    try:
        return asyncio.run(_with_store(config, run))
    except (StorageError, ValueError, OSError) as exc:
        # KeyExists names the conflicting ids, WouldRevive the retired keys the file would bring
        # back (--revive each to mean it); BackupCorrupt says what failed. Nothing was written.
        return _fail(f"backup import refused, nothing imported: {type(exc).__name__}: {exc}")


def enclave_client(config: Config, address: str | None, psk_file: str | None, timeout: float, what: str) -> Any:
    """An EnclaveClient for an operator command, on the configured channel (or the one given)."""
    from signer.link.client import EnclaveClient, load_psk, parse_address

    address = address or config.enclave.address
    psk_path = psk_file or config.enclave.psk_file
    try:
        parsed = parse_address(address)
        psk = load_psk(psk_path) if psk_path else None
        insecure = config.enclave.insecure_no_channel_auth_for_development
        if parsed.scheme in ("tcp", "vsock") and psk is None and not insecure:
            raise ValueError(f"{address}: the enclave channel needs its pre-shared key (--psk-file)")
        return EnclaveClient(
            parsed, psk=psk, allow_unauthenticated=insecure, call_timeout=timeout, connect_timeout=timeout
        )
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{what}: {exc}") from None


def cmd_validate(args: argparse.Namespace) -> int:
    """Ask the enclave to check every key share of the store (nothing is signed)."""
    from google.protobuf.json_format import MessageToDict

    from mpc.v1 import signer_pb2
    from signer.api.validation import validate_key
    from signer.errors import SignerError
    from signer.link.client import TransportError
    from signer.storage import KeyNotFound, StorageError

    config = _config(args)
    client = enclave_client(config, args.address, args.psk_file, args.timeout, "validate")

    async def run(store: Any) -> int:
        try:
            keys = [await store.get_key(k) for k in args.key_id] if args.key_id else await store.list_keys()
            bad = 0
            for key in keys:
                if key.retired:  # no share left to check
                    print(json.dumps({"key_id": key.key_id, "state": "retired"}, sort_keys=True), flush=True)
                    continue
                answer = await validate_key(client, key, args.party_id or "")
                bad += answer.validity != signer_pb2.KEY_VALIDITY_VALID
                doc = MessageToDict(answer, preserving_proto_field_name=True)
                doc["public_key"] = key.public_key.hex()
                print(json.dumps(doc, sort_keys=True), flush=True)
            if bad:
                print(f"mpc-signer validate: {bad} of {len(keys)} keys are not valid", file=sys.stderr)
            return 1 if bad else 0
        finally:
            await client.close()

    try:
        return asyncio.run(_with_store(config, run))
    except KeyNotFound as exc:
        return _fail(f"validate: {exc}")
    except (TransportError, SignerError, StorageError, OSError) as exc:
        return _fail(f"validate: {type(exc).__name__}: {exc}")


def cmd_enclave_ping(args: argparse.Namespace) -> int:
    """Ping the enclave over its socket (container health checks); prints its Info as JSON."""
    from signer.link.client import EnclaveClient, TransportError, load_psk, parse_address

    config = _config(args)
    address = args.address or config.enclave.address
    psk_file = args.psk_file or config.enclave.psk_file
    try:
        parsed = parse_address(address)
        psk = load_psk(psk_file) if psk_file else None
        insecure = config.enclave.insecure_no_channel_auth_for_development
        if parsed.scheme in ("tcp", "vsock") and psk is None and not insecure:
            raise ValueError(f"{address}: the enclave channel needs its pre-shared key (--psk-file)")
        verify = None
        pcrs_file = args.expected_pcrs_file or (
            config.enclave.expected_pcrs_file if config.enclave.psk_provisioning == "attested" else None
        )
        if pcrs_file is not None:
            from signer.link.provisioning import attested_offer_verifier, load_expected_pcrs

            if psk is None:
                raise ValueError("delivering the channel key needs the key (--psk-file)")
            verify = attested_offer_verifier(load_expected_pcrs(Path(pcrs_file)))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"enclave-ping: {exc}") from None

    async def run() -> dict[str, Any]:
        client = EnclaveClient(
            parsed,
            psk=psk,
            verify_offer=verify,
            allow_unauthenticated=insecure,
            call_timeout=args.timeout,
            connect_timeout=args.timeout,
        )
        try:
            info = await client.info()
            return {"address": address, "version": info.version, "attestation_mode": info.attestation_mode}
        finally:
            await client.close()

    try:
        print(json.dumps(asyncio.run(run())))
    except (TransportError, OSError) as exc:
        return _fail(f"enclave-ping: {exc}")
    return 0


def add_subcommands(sub: Any, with_config: Any) -> None:
    p = with_config(sub.add_parser("audit", help="print audit records from the configured store as JSON lines"))
    p.add_argument("--key-id", help="only records of this key (64 hex characters)")
    operations = ("dkg", "sign", "presign", "refresh", "reshare", "repair", "import", "export", "retire")
    p.add_argument("--operation", choices=operations)
    p.add_argument("--since", type=_since, help="only records at or after this ISO 8601 time (UTC if no zone)")
    p.add_argument("--limit", type=int, default=100, help="at most this many records, newest first (1..10000)")
    p.set_defaults(func=cmd_audit)

    backup = sub.add_parser("backup", help="export or import sealed key material")
    bsub = backup.add_subparsers(dest="backup_command", required=True)
    for name, func, doc in (
        ("export", cmd_backup_export, "write every key and available presignature (still sealed) to a new FILE"),
        ("import", cmd_backup_import, "verify FILE whole, then import it all-or-nothing; never overwrites a key"),
    ):
        p = with_config(bsub.add_parser(name, help=doc))
        p.add_argument("file", metavar="FILE")
        p.add_argument("--hmac-key-file", help="HMAC key (hex or raw, >= 16 bytes) kept apart from the backup")
        p.add_argument("--caller", default="cli", help="who to name in the audit record")
        if name == "import":
            p.add_argument(
                "--restore-presignatures",
                action="store_true",
                help="also restore presignatures (only if the source store will never sign again)",
            )
            p.add_argument(
                "--revive",
                action="append",
                metavar="KEY_ID",
                help="bring back the backup's share of this key although this store records it as retired "
                "(repeatable; without it such an import is refused and lists the keys)",
            )
        p.set_defaults(func=func)

    p = with_config(sub.add_parser("enclave-ping", help="check that the enclave answers on its socket"))
    p.add_argument("--address", help="enclave address (default: enclave.address)")
    p.add_argument("--psk-file", help="the channel's pre-shared key file (default: enclave.psk_file)")
    p.add_argument(
        "--expected-pcrs-file",
        help="deliver the key to a keyless enclave whose attestation matches these PCRs (var/pcrs.json; default: "
        "enclave.expected_pcrs_file with enclave.psk_provisioning = attested)",
    )
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=cmd_enclave_ping)

    p = with_config(sub.add_parser("validate", help="have the enclave check every key share of the store"))
    p.add_argument("--key-id", action="append", help="only this key (repeatable)")
    p.add_argument("--party-id", help="this node's party id in the keys (default: the party number the store records)")
    p.add_argument("--address", help="enclave address (default: enclave.address)")
    p.add_argument("--psk-file", help="the channel's pre-shared key file (default: enclave.psk_file)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=cmd_validate)

    from signer.ops.unseal import add_subcommands as add_unseal_subcommands

    add_unseal_subcommands(sub, with_config)
