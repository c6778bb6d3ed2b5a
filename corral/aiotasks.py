"""Ending a background task its owner started (house style: every background
task has an owner that cancels it on shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` and wait until it has finished, so that nothing of it
    runs on after its owner stopped. Its CancelledError is the expected end and
    is swallowed (as is one that reaches the owner meanwhile: owners call this
    from their stop() and finally blocks, whose clean-up must go on); any other
    error the task ended with is raised."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
