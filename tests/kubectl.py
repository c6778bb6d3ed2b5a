"""The real kubectl, run against a test master: the `kubectl` on PATH (the
project's install step puts one there where it is missing: see
scripts/debian-packages.txt). A machine without kubectl fails these tests; it
does not skip them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import Master


def kubectl_binary() -> str:
    found = shutil.which("kubectl")
    assert found, "no kubectl on PATH: these tests drive the real kubectl (scripts/install.sh)"
    return found


@dataclass
class Kubectl:
    """``kubectl(*args)`` returns stdout and fails the test on a non-zero exit;
    ``kubectl.run(*args)`` returns the finished process whatever its exit."""

    master: Master
    cache: Path  # discovery cache of its own, so no test sees another's

    def run(self, *args: str, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.master.kubeconfig),
               "KUBECACHEDIR": str(self.cache)}
        return subprocess.run([kubectl_binary(), "--cache-dir", str(self.cache), *args],
                              input=input, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)

    def __call__(self, *args: str, input: str | None = None) -> str:
        proc = self.run(*args, input=input)
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout
