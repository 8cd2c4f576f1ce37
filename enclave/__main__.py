"""Enclave process entry point: `python -m enclave --listen URI` (also `mpc-signer enclave`).

Inside a Nitro Enclave this is the image's only entry point; elsewhere the signer host starts it
as a child process (enclave mode "embedded") or an operator runs it beside the host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from door.address import Address, parse_address
from door.framing import DEFAULT_MAX_FRAME_BYTES
from door.handshake import load_psk
from enclave import options
from enclave.engine.engine import Engine
from enclave.engine.validation import KeyValidator
from enclave.service import EnclaveService
from enclave.tee.attestation import NITRO_MODE
from enclave.tee.channel_key import AttestedKeyReceiver
from enclave.tee.identity import EnclaveIdentity
from enclave.transport.server import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    FrameServer,
)
from enclave.unseal.handler import UnsealHandler

log = logging.getLogger("enclave")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        required=True,
        help="vsock://CID:PORT (CID 'any' to accept from the parent), unix:///path, or tcp://127.0.0.1:PORT",
    )
    parser.add_argument("--psk-file", help="hex pre-shared key (>= 32 bytes) every connection must prove")
    parser.add_argument(
        "--psk-provisioning",
        choices=("none", "attested"),
        default=os.environ.get("MPC_ENCLAVE_PSK_PROVISIONING") or "none",
        help="attested: start without a key and keep the first one a host delivers encrypted to this "
        "enclave's attested identity key (the Nitro image's default; needs --attestation nitro)",
    )
    parser.add_argument(
        "--insecure-no-channel-auth-for-development",
        action="store_true",
        help="DEVELOPMENT ONLY: listen on vsock:// or tcp:// without channel authentication",
    )
    parser.add_argument("--max-frame-bytes", type=int, default=DEFAULT_MAX_FRAME_BYTES)
    parser.add_argument(
        "--channel-handshake-timeout",
        type=float,
        default=DEFAULT_HANDSHAKE_TIMEOUT,
        metavar="SECONDS",
        help="close a connection that has not completed the handshake and sent its first request by then",
    )
    parser.add_argument(
        "--channel-idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close a connection idle that long (0: never); keep it well above the host's health_interval_seconds,"
        " at which the host pings over its connection",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="connections open at once (the host keeps one); beyond it the oldest one that sent nothing is"
        " closed, or the new one when all have spoken",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    options.add_arguments(parser)


def build_engine(parts: options.EngineParts, identity: EnclaveIdentity) -> Engine:
    """The session engine from the checked parts and this boot's identity key (a reshare party
    listed in new_party_keys signs with it). Tests replace this function in their own entry
    points (tests/service/fixture_enclave.py) to give the engine fixture primes."""
    return Engine(parts.sealer, config=parts.config, policy=parts.policy, identity=identity)


async def serve(args: argparse.Namespace, parts: options.EngineParts) -> None:
    address = parse_address(args.listen)
    psk = load_psk(args.psk_file) if args.psk_file else None
    # The session engine (sealer, policy and limits checked by run() before listening).
    # This boot's identity key first: attestation binds it, and the engine signs with it.
    identity = EnclaveIdentity.generate()
    engine = build_engine(parts, identity)

    def gauges() -> dict[str, int]:
        return {**engine.gauges(), **server.gauges()}

    unseal = UnsealHandler(parts.unsealer, identity) if parts.unsealer is not None else None
    service = EnclaveService(
        sessions=engine,
        preparams=engine,
        attestor=parts.attestor,
        credentials=parts.credentials,
        identity=identity,
        gauges=gauges,
        unseal=unseal,
        validator=KeyValidator(parts.sealer),
    )
    receiver = AttestedKeyReceiver(identity, parts.attestor) if args.psk_provisioning == "attested" else None
    server = FrameServer(
        service.handle,
        psk=psk,
        key_receiver=receiver,
        allow_unauthenticated=args.insecure_no_channel_auth_for_development,
        max_frame_bytes=args.max_frame_bytes,
        handshake_timeout=args.channel_handshake_timeout,
        idle_timeout=args.channel_idle_timeout or None,
        max_connections=args.max_connections,
    )
    await server.start(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("enclave shutting down")
        await server.close()
        engine.close()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        channel_auth_check(parse_address(args.listen), args)
        if args.psk_file:
            load_psk(args.psk_file)
    except (ValueError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    if args.max_frame_bytes < 1024:
        log.error("cannot start: --max-frame-bytes must be at least 1024")
        return 2
    if args.channel_handshake_timeout <= 0 or args.channel_idle_timeout < 0 or args.max_connections < 1:
        log.error(
            "cannot start: --channel-handshake-timeout must be positive, --channel-idle-timeout not negative"
            " and --max-connections at least 1"
        )
        return 2
    try:
        parts = options.open_parts(args)
    except options.SetupError as exc:
        log.error("cannot start: %s", exc)
        return 2
    try:
        asyncio.run(serve(args, parts))
    except OSError as exc:
        log.error("cannot listen on %s: %s", args.listen, exc)
        return 1
    except ValueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    with contextlib.suppress(Exception):
        logging.shutdown()
    return 0


def channel_auth_check(address: Address, args: argparse.Namespace) -> None:
    """ValueError unless the channel is authenticated as the listen address demands."""
    if args.psk_file and args.psk_provisioning == "attested":
        raise ValueError("--psk-file and --psk-provisioning attested are two sources of one key: choose one")
    if args.psk_provisioning == "attested" and args.attestation != NITRO_MODE:
        raise ValueError(
            "--psk-provisioning attested needs --attestation nitro (a host delivers its key only "
            "to an enclave whose attestation it verified)"
        )
    authenticated = bool(args.psk_file) or args.psk_provisioning == "attested"
    if address.scheme != "unix" and not authenticated:
        if not args.insecure_no_channel_auth_for_development:
            raise ValueError(
                f"listening on {address} needs channel authentication: a pre-shared key (--psk-file), or "
                "--psk-provisioning attested, or, for development only, --insecure-no-channel-auth-for-development"
            )
        log.warning(
            "INSECURE: --insecure-no-channel-auth-for-development: %s accepts any local process as "
            "the host; never use this in production",
            address,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enclave", description="mpc-signer enclave process")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
