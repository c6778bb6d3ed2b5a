"""Structured key=value logs on stderr, one line per event."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format="time=%(asctime)s level=%(levelname)s component=%(name)s msg=%(message)s",
    )
    # One line per request of our own clients would drown the events that matter.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
