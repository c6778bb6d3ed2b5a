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

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.master.kubeconfig),
                "KUBECACHEDIR": str(self.cache)}

    @property
    def argv(self) -> list[str]:
        return [kubectl_binary(), "--cache-dir", str(self.cache)]

    def run(self, *args: str, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, *args], input=input, capture_output=True,
                              text=True, env=self.env, timeout=timeout, check=False)

    def in_tty(self, command: str, stdin: str = "", rows: int = 40, cols: int = 100,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``kubectl <command>`` in a terminal of rows x cols (util-linux `script`),
        typing ``stdin`` into it."""
        line = f"stty rows {rows} cols {cols}; exec {' '.join(self.argv)} {command}"
        return subprocess.run(["script", "-qec", line, "/dev/null"], env=self.env, text=True,
                              capture_output=True, check=False, timeout=timeout, input=stdin)

    def background(self, *args: str) -> subprocess.Popen[str]:
        """A long-running kubectl (port-forward, attach); the caller stops it."""
        return subprocess.Popen([*self.argv, *args], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def __call__(self, *args: str, input: str | None = None) -> str:
        proc = self.run(*args, input=input)
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout
