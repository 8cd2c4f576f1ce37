"""Enclave process entry point: `python -m enclave --listen URI` (also `mpc-signer enclave`).

Inside a Nitro Enclave this is the image's only entry point; elsewhere the signer host starts it
as a child process (enclave mode "embedded") or an operator runs it beside the host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from enclave.engine import setup as engine_setup
from enclave.service import EnclaveService
from enclave.transport.address import parse_address
from enclave.transport.framing import DEFAULT_MAX_FRAME_BYTES
from enclave.transport.handshake import load_psk
from enclave.transport.server import FrameServer

log = logging.getLogger("enclave")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        required=True,
        help="vsock://CID:PORT (CID 'any' to accept from the parent), unix:///path, or tcp://127.0.0.1:PORT",
    )
    parser.add_argument("--psk-file", help="hex pre-shared key (>= 32 bytes); required for tcp://")
    parser.add_argument("--max-frame-bytes", type=int, default=DEFAULT_MAX_FRAME_BYTES)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    engine_setup.add_arguments(parser)


async def serve(args: argparse.Namespace, parts: engine_setup.EngineParts) -> None:
    address = parse_address(args.listen)
    psk = load_psk(args.psk_file) if args.psk_file else None
    # The session engine (sealer, policy and limits checked by run() before listening).
    engine = engine_setup.build_engine(parts)
    service = EnclaveService(sessions=engine, attestor=parts.attestor, credentials=parts.credentials)
    server = FrameServer(service.handle, psk=psk, max_frame_bytes=args.max_frame_bytes)
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
        parse_address(args.listen)
        if args.psk_file:
            load_psk(args.psk_file)
    except (ValueError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    if args.max_frame_bytes < 1024:
        log.error("cannot start: --max-frame-bytes must be at least 1024")
        return 2
    try:
        parts = engine_setup.open_parts(args)
    except engine_setup.SetupError as exc:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enclave", description="mpc-signer enclave process")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
