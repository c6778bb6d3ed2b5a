"""Run a long-running process's main coroutine: on uvloop when it is installed
(it is a dependency; the fallback keeps a source checkout without it working),
with the cyclic garbage collector tuned for a big, long-lived heap.

The collector stops the event loop for as long as a pass takes. A master's
caches (every object, in the store's, the scheduler's and the controllers'
informers) are millions of objects, mostly long-lived, and with CPython's
defaults (a young pass every 700 allocations, and a full pass whenever the
long-lived heap grew by a quarter) a 5,000-pod create on a loaded 2-core
machine stopped the master's loop for 15 s in 2,600 passes, 18 of them full,
the longest 0.9 s: enough for a leader to miss a Lease renewal. So, before the
loop starts:
  - what start-up made (modules, classes, functions, constants: objects that
    live as long as the process) is frozen out of collection: no pass walks it;
  - the young generation is collected every GC_THRESHOLDS[0] allocations, not
    700, so far fewer objects reach the old generations and few full passes run.
The same create then stopped it for 4.4 s, 2 full passes, the longest 0.5 s
(bench/gc_pauses.py, median of 2 runs). Reference cycles are still collected.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.collect()  # the garbage of start-up goes, not into the frozen generation
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(main: Coroutine[Any, Any, T]) -> T:
    tune_gc()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
