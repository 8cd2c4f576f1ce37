"""Operator shares of the t-of-n unseal (README "Unsealing", "Rotating operator shares"):

    mpc-signer unseal-status                          sealed or not, the sets, the progress (JSON)
    mpc-signer unseal-init --shares N --threshold T   the first share set; prints each share once
    mpc-signer unseal [--share-file F|-]              one operator's share towards unsealing
    mpc-signer rekey --shares N --threshold T         with T current shares: a new set, pending
    mpc-signer rekey --verify                         with the new set's shares: it becomes current

Each command talks to the enclave over its channel directly (enclave.address and psk_file of the
configuration, or --address/--psk-file), not through the signer host process. A share is read
from the terminal without echo (or from a file or stdin with --share-file), never from the
command line (which other users can see), and leaves this process only HPKE-encrypted to the
enclave's identity key of this boot, with its use bound in (mpc.v1.enclave.UnsealRequest). New
shares arrive encrypted to a key made for this one command run, and are printed once; nothing
here writes or logs a share. Exit status: 0 done, 1 refused (the enclave's reason on stderr),
2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any, Final

from signer.config.loader import ConfigError, load_config

OPERATOR_SHARE_LABEL: Final = b"mpc-signer/operator-share/v1"
NEW_SHARE_LABEL: Final = b"mpc-signer/new-operator-share/v1"
CLEAR_SCREEN: Final = "\033[2J\033[H"


def _status_json(status: Any) -> str:
    from google.protobuf.json_format import MessageToDict

    from mpc.v1 import enclave_pb2 as epb

    shown = epb.UnsealStatus()
    shown.CopyFrom(status)
    shown.ClearField("new_shares")
    return json.dumps(
        MessageToDict(shown, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        sort_keys=True,
    )


def _read_shares(source: str | None, count: int, what: str) -> list[str]:
    """`count` shares from the terminal (no echo), or every non-empty line of a file / stdin."""
    if source is None:
        if not sys.stdin.isatty():
            raise ConfigError("no terminal to read a share from: give --share-file FILE (or - for stdin)")
        return [getpass.getpass(f"{what} {i} of {count} (input is not shown): ").strip() for i in range(1, count + 1)]
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--share-file {source}: cannot read it ({type(exc).__name__})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < count:
        raise ConfigError(f"--share-file {source}: {count} share(s) needed, {len(lines)} found (one per line)")
    return lines


class _Session:
    """One command's connection to the enclave and its keys."""

    def __init__(self, args: argparse.Namespace) -> None:
        from signer.client.sealed_result import generate_recipient_key
        from signer.ops.cli import enclave_client

        config = load_config(args.config)
        self.client = enclave_client(config, args.address, args.psk_file, args.timeout, args.command)
        self.recipient = generate_recipient_key()  # this run only; the new shares are encrypted to it

    async def call(self, **op: Any) -> Any:
        from mpc.v1 import enclave_pb2 as epb

        response = await self.client.call(epb.Request(unseal=epb.UnsealRequest(**op)))
        return response.unseal_status

    async def status(self) -> Any:
        from mpc.v1 import enclave_pb2 as epb

        return await self.call(status=epb.UnsealStatusRequest())

    async def encrypt(self, shares: list[str], use: str, recipient: bytes = b"") -> list[bytes]:
        from signer.client.sealed_result import context, seal_to

        enclave_key = bytes((await self.client.info()).enclave_public_key)
        info = context(OPERATOR_SHARE_LABEL, use.encode("ascii"), recipient)
        return [seal_to(enclave_key, share.encode("ascii", errors="replace"), info) for share in shares]

    def recipient_bytes(self) -> bytes:
        from signer.client.sealed_result import public_bytes

        return public_bytes(self.recipient)

    def new_shares(self, new: Any) -> list[str]:
        from signer.client.sealed_result import context, open_from

        def one(index: int, ciphertext: bytes) -> str:
            info = context(NEW_SHARE_LABEL, new.set_id.encode("ascii"), bytes([index]))
            return open_from(self.recipient, ciphertext, info).decode("ascii")

        return [one(i, c) for i, c in enumerate(new.encrypted_shares, 1)]


def _print_new(new: Any, texts: list[str], as_json: bool, pause: bool) -> None:
    if as_json:
        print(json.dumps({"set_id": new.set_id, "threshold": new.threshold, "shares": texts}), flush=True)
        return
    n = len(texts)
    print(f"share set {new.set_id}: {n} shares, any {new.threshold} unseal. Each is shown once and stored nowhere.")
    for i, text in enumerate(texts, 1):
        if pause and sys.stdout.isatty():
            input(f"\nOperator {i}: press Enter to show share {i} of {n}... ")
        print(f"\nshare {i} of {n} (set {new.set_id}, any {new.threshold} unseal):\n  {text}", flush=True)
        if pause and sys.stdout.isatty():
            input("Copied? Press Enter to clear the screen... ")
            print(CLEAR_SCREEN, end="", flush=True)
    print(
        f"\nGive each operator one share; lose more than {n - new.threshold} and the node can never be unsealed again."
    )


def _run(args: argparse.Namespace, action: Any) -> int:
    from signer.link.client import EnclaveRequestError, TransportError

    async def main() -> int:
        session = _Session(args)
        try:
            return int(await action(session))
        finally:
            await session.client.close()

    try:
        return asyncio.run(main())
    except EnclaveRequestError as exc:
        print(f"mpc-signer {args.command}: refused: {exc.message}", file=sys.stderr)
        return 1
    except TransportError as exc:
        print(f"mpc-signer {args.command}: {exc}", file=sys.stderr)
        return 1


def cmd_unseal_status(args: argparse.Namespace) -> int:
    async def action(s: _Session) -> int:
        print(_status_json(await s.status()))
        return 0

    return _run(args, action)


def cmd_unseal_init(args: argparse.Namespace) -> int:
    from mpc.v1 import enclave_pb2 as epb

    async def action(s: _Session) -> int:
        status = await s.call(
            init=epb.UnsealInit(
                shares=args.shares,
                threshold=args.threshold,
                recipient_public_key=s.recipient_bytes(),
            )
        )
        _print_new(status.new_shares, s.new_shares(status.new_shares), args.json, args.pause)
        print(status.message, file=sys.stderr)
        return 0

    return _run(args, action)


def cmd_unseal(args: argparse.Namespace) -> int:
    from mpc.v1 import enclave_pb2 as epb

    shares = _read_shares(args.share_file, 1, "share")
    if len(shares) != 1:
        raise ConfigError("mpc-signer unseal takes one share; each operator enters their own")

    async def action(s: _Session) -> int:
        [encrypted] = await s.encrypt(shares, "unseal")
        status = await s.call(share=epb.UnsealShare(encrypted_share=encrypted))
        print(status.message, file=sys.stderr)
        print(_status_json(status))
        return 0

    return _run(args, action)


def cmd_rekey(args: argparse.Namespace) -> int:
    from mpc.v1 import enclave_pb2 as epb

    if not args.verify and (args.shares is None or args.threshold is None):
        raise ConfigError("rekey needs --shares N and --threshold T (or --verify)")

    async def action(s: _Session) -> int:
        status = await s.status()
        if args.verify:
            if not status.HasField("pending"):
                print("mpc-signer rekey: no new set is waiting for verification", file=sys.stderr)
                return 1
            what = f"share of the NEW set {status.pending.set_id}"
            texts = _read_shares(args.share_file, status.pending.threshold, what)
            verified = await s.call(rekey_verify=epb.RekeyVerify(encrypted_shares=await s.encrypt(texts, "verify")))
            print(verified.message, file=sys.stderr)
            print(_status_json(verified))
            return 0
        current = status.current
        texts = _read_shares(args.share_file, current.threshold, f"share of the current set {current.set_id}")
        recipient = s.recipient_bytes()
        rekeyed = await s.call(
            rekey=epb.Rekey(
                encrypted_shares=await s.encrypt(texts, "rekey", recipient),
                shares=args.shares,
                threshold=args.threshold,
                recipient_public_key=recipient,
            )
        )
        _print_new(rekeyed.new_shares, s.new_shares(rekeyed.new_shares), args.json, args.pause)
        print(rekeyed.message, file=sys.stderr)
        return 0

    return _run(args, action)


def add_subcommands(sub: Any, with_config: Any) -> None:
    def channel(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--address", help="enclave address (default: enclave.address)")
        p.add_argument("--psk-file", help="the channel's pre-shared key file (default: enclave.psk_file)")
        p.add_argument("--timeout", type=float, default=10.0)
        return p

    def printing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print the new shares as one JSON object")
        p.add_argument("--pause", action="store_true", help="one share at a time, clearing the terminal in between")

    p = channel(with_config(sub.add_parser("unseal-status", help="is the enclave sealed; share sets and progress")))
    p.set_defaults(func=cmd_unseal_status)

    p = channel(with_config(sub.add_parser("unseal-init", help="create the first operator share set")))
    p.add_argument("--shares", type=int, required=True, help="operators (shares) in the set, 1..32")
    p.add_argument("--threshold", type=int, required=True, help="shares needed to unseal, 1..shares")
    printing(p)
    p.set_defaults(func=cmd_unseal_init)

    p = channel(with_config(sub.add_parser("unseal", help="enter one operator share")))
    p.add_argument("--share-file", help="read the share from this file (- for stdin) instead of the terminal")
    p.set_defaults(func=cmd_unseal)

    p = channel(with_config(sub.add_parser("rekey", help="issue a new share set (or --verify it)")))
    p.add_argument("--shares", type=int, help="shares in the new set, 1..32")
    p.add_argument("--threshold", type=int, help="shares of the new set needed to unseal")
    p.add_argument("--verify", action="store_true", help="enter the new set's shares: it replaces the old set")
    p.add_argument("--share-file", help="read the shares from this file (- for stdin), one per line")
    printing(p)
    p.set_defaults(func=cmd_rekey)
