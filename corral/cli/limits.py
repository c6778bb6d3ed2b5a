"""Process limits every long-running corral process sets at start."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("corral.limits")


def raise_open_files_limit() -> int:
    """Raise this process's RLIMIT_NOFILE soft limit to its hard limit, as the Go
    runtime does for every Kubernetes binary: the default soft limit (1024) is
    used up by a thousand idle connections. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as err:  # e.g. an infinite hard limit the kernel caps
        log.warning("cannot raise the open files limit soft=%d hard=%d error=%s", soft, hard,
                    err)
        return soft
    return hard
