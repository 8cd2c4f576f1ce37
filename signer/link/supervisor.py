"""The embedded enclave: `python -m enclave` as a supervised child of the host (enclave mode
"embedded"), restarted if it exits, started with a filtered environment only."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from signer.tasks import cancel_quietly

log = logging.getLogger(__name__)


# What the embedded enclave inherits from the host's environment: enough to find Python and its
# packages and to read its own MPC_ENCLAVE_* settings. Nothing else: the host's environment can
# hold MPC_SIGNER_STORAGE_URL with a database password, AWS credentials, tokens.
ENCLAVE_ENVIRONMENT: Final = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")


def enclave_environment(host: Mapping[str, str]) -> dict[str, str]:
    env = {name: host[name] for name in ENCLAVE_ENVIRONMENT if name in host}
    env.update((name, value) for name, value in host.items() if name.startswith("MPC_ENCLAVE_"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class EmbeddedEnclave:
    """The enclave as a supervised child process (`python -m enclave`), restarted if it exits,
    started with `enclave_environment` only."""

    def __init__(self, address: str, psk_file: Path | None, max_frame_bytes: int, restart_delay: float = 1.0) -> None:
        self._args = [sys.executable, "-m", "enclave", "--listen", address, "--max-frame-bytes", str(max_frame_bytes)]
        if psk_file is not None:
            self._args += ["--psk-file", str(psk_file)]
        self._restart_delay = restart_delay
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(*self._args, env=enclave_environment(os.environ))
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            log.error("embedded enclave exited with status %s; restarting in %.1fs", code, self._restart_delay)
            await asyncio.sleep(self._restart_delay)
            if self._stopping:  # e.g. Ctrl-C reached the child first
                return
            self._process = await asyncio.create_subprocess_exec(*self._args, env=enclave_environment(os.environ))

    async def stop(self) -> None:
        self._stopping = True
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        await cancel_quietly(self._task)
