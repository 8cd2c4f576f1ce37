"""`mpc-signer`: the composition root. Builds objects from configuration and passes them down;
it is also the one host module allowed to start the enclave in-process (`mpc-signer enclave`).

    mpc-signer serve [--config FILE]        the host (and, enclave mode "embedded", its enclave)
    mpc-signer enclave --listen URI         the enclave process alone (with python -m enclave's
                                            sealing, session and policy options)
    mpc-signer certs --out DIR [--force]    development CA, certificates, JWT and HMAC keys
    mpc-signer token                        a development service JWT, signed with var/certs/jwt.key
    mpc-signer ping                         calls Ping over mTLS and prints the answer as JSON
    mpc-signer demo [--target HOST:PORT] [--lifecycle]
                                            2-of-2 key generation and signatures, both protocols, verified;
                                            --lifecycle: a 2-of-3 key made, refreshed, recovered
    mpc-signer audit | backup | enclave-ping | validate   operator commands (signer.ops.cli)
    mpc-signer unseal-status | unseal-init | unseal | rekey   operator shares (signer.ops.unseal)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from signer.config.loader import ConfigError, load_config
from signer.config.schema import Config

log = logging.getLogger("mpc-signer")


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    from signer.logs import configure
    from signer.server import serve

    config = _config(args)
    configure(config.server.log_level, config.server.log_format)
    asyncio.run(serve(config))
    return 0


def cmd_enclave(args: argparse.Namespace) -> int:
    from enclave.__main__ import run

    return run(args)


def cmd_certs(args: argparse.Namespace) -> int:
    from signer.ops.devcerts import write_dev_certs

    try:
        paths = write_dev_certs(Path(args.out), overwrite=args.force)
    except FileExistsError as exc:
        print(f"mpc-signer certs: {exc}", file=sys.stderr)
        return 1
    print(f"wrote development credentials to {paths.dir}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from signer.auth.jwt import load_signing_key, mint_token

    config = _config(args)
    algorithm, key = load_signing_key(Path(args.key))
    print(
        mint_token(
            key,
            algorithm,
            kid=args.kid,
            issuer=config.jwt.issuer,
            audience=config.jwt.audience,
            subject=args.subject,
            lifetime_seconds=args.lifetime,
        )
    )
    return 0


def cmd_ping(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf.json_format import MessageToDict

    from mpc.v1 import signer_pb2, signer_pb2_grpc

    config = _config(args)
    target = args.target or config.server.listen
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(args.ca).read_bytes(),
        private_key=Path(args.key).read_bytes(),
        certificate_chain=Path(args.cert).read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    with grpc.secure_channel(target, creds, options=options) as channel:
        stub = signer_pb2_grpc.SignerServiceStub(channel)
        try:
            response = stub.Ping(
                signer_pb2.PingRequest(attestation_nonce=bytes.fromhex(args.attestation_nonce)), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            print(f"mpc-signer ping: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    print(json.dumps(MessageToDict(response), indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from signer.ops.demo import Target, main

    target = None
    if args.target:
        target = Target(
            address=args.target,
            ca=Path(args.ca),
            cert=Path(args.cert),
            key=Path(args.key),
            token_key=Path(args.token_key),
            hmac_key=Path(args.hmac_key),
            hmac_key_id=args.hmac_key_id,
            server_name=args.server_name or None,
        )
    return main(target, lifecycle=args.lifecycle)


def build_parser() -> argparse.ArgumentParser:
    from enclave.__main__ import add_arguments as add_enclave_arguments

    parser = argparse.ArgumentParser(prog="mpc-signer", description="Server-side signing party of an MPC wallet")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="TOML configuration file (default: $MPC_SIGNER_CONFIG, else built-in defaults)")
        return p

    with_config(sub.add_parser("serve", help="run the signer host")).set_defaults(func=cmd_serve)

    p = sub.add_parser("enclave", help="run the enclave process")
    add_enclave_arguments(p)
    p.set_defaults(func=cmd_enclave)

    p = sub.add_parser("certs", help="write development credentials")
    p.add_argument("--out", default="var/certs")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_certs)

    p = with_config(sub.add_parser("token", help="mint a development service JWT"))
    p.add_argument("--key", default="var/certs/jwt.key", help="signing key (PEM private key or hex HS256 secret)")
    p.add_argument("--kid", default="dev")
    p.add_argument("--subject", default="mpc-service")
    p.add_argument("--lifetime", type=int, default=300, help="seconds")
    p.set_defaults(func=cmd_token)

    p = with_config(sub.add_parser("ping", help="call Ping over mTLS"))
    p.add_argument("--target", help="HOST:PORT (default: server.listen)")
    p.add_argument("--ca", default="var/certs/ca.pem")
    p.add_argument("--cert", default="var/certs/client.pem")
    p.add_argument("--key", default="var/certs/client.key")
    p.add_argument("--server-name", default="", help="TLS name to expect if it differs from the target host")
    p.add_argument("--attestation-nonce", default="", help="hex nonce: ask for an attestation document")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=cmd_ping)

    p = sub.add_parser("demo", help="key generation and a verified signature for each protocol, end to end")
    p.add_argument("--target", help="HOST:PORT of a running signer (default: start an embedded one in a temp dir)")
    p.add_argument("--ca", default="var/certs/ca.pem")
    p.add_argument("--cert", default="var/certs/client.pem")
    p.add_argument("--key", default="var/certs/client.key")
    p.add_argument("--token-key", default="var/certs/jwt.key", help="key that mints the service JWT (kid dev)")
    p.add_argument("--hmac-key", default="var/certs/hmac.key", help="hex HMAC key shared with the signer")
    p.add_argument("--hmac-key-id", default="dev")
    p.add_argument("--server-name", default="", help="TLS name to expect if it differs from the target host")
    p.add_argument(
        "--lifecycle",
        action="store_true",
        help="2-of-3: make a key, refresh it, recover a lost client share, signing after each step",
    )
    p.set_defaults(func=cmd_demo)

    from signer.ops.cli import add_subcommands as add_ops_subcommands

    add_ops_subcommands(sub, with_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"mpc-signer: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
