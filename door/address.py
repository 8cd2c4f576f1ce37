"""Channel addresses: vsock://CID:PORT, unix:///path (or unix://relative/path), tcp://127.0.0.1:PORT.

TCP is accepted on loopback addresses only: frames are neither encrypted nor MAC'd after the
pre-shared-key handshake, which is acceptable between two processes of one machine and nowhere
else. Across machines (Nitro) the channel is vsock, which never leaves the instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

VMADDR_CID_ANY = 0xFFFFFFFF

P = TypeVar("P", bound=asyncio.Protocol)


@dataclass(frozen=True)
class Address:
    scheme: Literal["vsock", "unix", "tcp"]
    path: str = ""  # unix
    host: str = ""  # tcp
    cid: int = 0  # vsock
    port: int = 0  # tcp, vsock

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        if self.scheme == "vsock":
            return f"vsock://{self.cid}:{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def _port(text: str, uri: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{uri!r}: port must be an integer in 1..65535")
    return int(text)


def parse_address(uri: str) -> Address:
    """Parse a channel URI; ValueError with the reason for anything else."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not rest:
        raise ValueError(f"{uri!r}: expected vsock://CID:PORT, unix:///path or tcp://127.0.0.1:PORT")
    if scheme == "unix":
        if "\x00" in rest:
            raise ValueError(f"{uri!r}: NUL in socket path")
        return Address("unix", path=rest)
    if scheme == "vsock":
        cid_text, sep, port_text = rest.rpartition(":")
        if not sep:
            raise ValueError(f"{uri!r}: expected vsock://CID:PORT")
        cid = VMADDR_CID_ANY if cid_text in ("any", "-1") else None
        if cid is None:
            if not cid_text.isdigit() or int(cid_text) > VMADDR_CID_ANY:
                raise ValueError(f"{uri!r}: CID must be an unsigned 32-bit integer or 'any'")
            cid = int(cid_text)
        return Address("vsock", cid=cid, port=_port(port_text, uri))
    if scheme == "tcp":
        host_text, sep, port_text = rest.rpartition(":")
        if not sep:
            raise ValueError(f"{uri!r}: expected tcp://127.0.0.1:PORT")
        host = host_text[1:-1] if host_text.startswith("[") and host_text.endswith("]") else host_text
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{uri!r}: TCP host must be a literal loopback address (127.0.0.1 or [::1])") from None
        if not ip.is_loopback:
            raise ValueError(f"{uri!r}: TCP is accepted on loopback only (the channel is not encrypted)")
        return Address("tcp", host=host, port=_port(port_text, uri))
    raise ValueError(f"{uri!r}: unknown scheme {scheme!r} (vsock, unix or tcp)")


def _bind_unix_socket(path: str) -> socket.socket:
    """A listening AF_UNIX socket whose file is created mode 0600 (umask set around bind, so
    there is no moment at which it is reachable by others)."""
    target = Path(path)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        if not stat.S_ISSOCK(target.lstat().st_mode):
            raise OSError(errno.EEXIST, f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            target.unlink()  # stale socket from a previous run
        else:
            raise OSError(errno.EADDRINUSE, f"{path} is in use by a running process")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start_listener(address: Address, protocol_factory: Callable[[], asyncio.Protocol]) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    if address.scheme == "unix":
        return await loop.create_unix_server(protocol_factory, sock=_bind_unix_socket(address.path))
    if address.scheme == "tcp":
        return await loop.create_server(protocol_factory, host=address.host, port=address.port, reuse_address=True)
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        sock.bind((address.cid, address.port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return await loop.create_server(protocol_factory, sock=sock)


def cleanup_listener(address: Address) -> None:
    if address.scheme == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address.path)


async def open_connection(address: Address, protocol_factory: Callable[[], P]) -> P:
    loop = asyncio.get_running_loop()
    if address.scheme == "unix":
        _, protocol = await loop.create_unix_connection(protocol_factory, address.path)
        return protocol
    if address.scheme == "tcp":
        _, protocol = await loop.create_connection(protocol_factory, address.host, address.port)
        return protocol
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (address.cid, address.port))
        _, protocol = await loop.create_connection(protocol_factory, sock=sock)
    except BaseException:
        sock.close()
        raise
    return protocol
