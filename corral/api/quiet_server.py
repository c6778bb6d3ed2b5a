"""uvicorn's Server as the master's API and each agent's own server run it.

    uvicorn                                   QuietServer
    signal handlers of its own                none: the process owner decides on exit
    main loop wakes every 0.1 s to look at    wakes once a second (the Date header's
      should_exit (and refreshes the Date       own granularity), or at once when
      header every tenth wake)                  should_exit is set

An idle master and each idle agent were waking ten times a second for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn

TICK_SECONDS = 1.0  # uvicorn refreshes the Date header on every tenth of its 0.1 s ticks


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        # Set on the loop (a stop() of its owner): the main loop wakes at once.
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()

    async def main_loop(self) -> None:
        counter = 0  # on_tick refreshes the Date header when counter % 10 == 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), TICK_SECONDS)
