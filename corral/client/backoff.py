"""Exponential back-off with jitter, for retries and re-watches.

Jitter spreads the retries of many clients so a restarted master is not hit by
all of them in the same instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.1  # seconds before the first retry
    maximum: float = 5.0
    factor: float = 2.0
    jitter: float = 0.5  # each delay is stretched by up to this fraction
    attempts: int = field(default=0, init=False)

    def next_delay(self) -> float:
        base = min(self.initial * self.factor ** self.attempts, self.maximum)
        self.attempts += 1
        return base * (1.0 + random.uniform(0.0, self.jitter))

    def reset(self) -> None:
        self.attempts = 0
