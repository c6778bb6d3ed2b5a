"""The one way a test waits for something: poll for the positive signal until a
deadline, then fail naming what was awaited and the last value seen. Never a
fixed sleep.

    wait_for(check, timeout=30, what=...)          plain tests: returns check()'s
                                                  first truthy value
    await eventually(probe, timeout=30, what=...)  async tests: probe may be a
                                                  function or a coroutine function
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Deadline:
    def __init__(self, timeout: float, what: str) -> None:
        self.timeout = timeout
        self.what = what
        self.at = time.monotonic() + timeout

    def check(self, last: object) -> None:
        if time.monotonic() >= self.at:
            raise AssertionError(
                f"timed out after {self.timeout}s waiting for {self.what}; last: {last!r}")


def wait_for(check: Callable[[], T], timeout: float = 30.0, what: str = "the condition",
             interval: float = 0.05) -> T:
    deadline = _Deadline(timeout, what)
    while not (last := check()):
        deadline.check(last)
        time.sleep(interval)
    return last


async def eventually(probe: Callable[[], T] | Callable[[], Awaitable[T]],
                     timeout: float = 30.0, what: str = "the condition",
                     interval: float = 0.02) -> T:
    deadline = _Deadline(timeout, what)
    while True:
        result: Any = probe()
        last: T = await result if inspect.isawaitable(result) else result
        if last:
            return last
        deadline.check(last)
        await asyncio.sleep(interval)
