"""One way to stop a background task: cancel it and wait until it has unwound."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_quietly(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` (if any) and wait for it; its CancelledError is swallowed, nothing else."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
