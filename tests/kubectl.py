"""The real kubectl, run against a test master: the 1.32 client when the
machine has it (the dispatcher's own folder), else the `kubectl` on PATH.
A machine without kubectl fails these tests; it does not skip them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import Master

KUBECTL_132 = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")


def kubectl_binary() -> str:
    found = str(KUBECTL_132) if KUBECTL_132.exists() else shutil.which("kubectl")
    assert found, "no kubectl on PATH: these tests drive the real kubectl"
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
