"""The real kubectl trusts the cluster CA a kubeconfig carries inline
(certificate-authority-data), against a real HTTPS listener."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import yaml

from corral.api.tls import Pki, ensure_pki
from tests.https import ANSWER, https_server
from tests.kubectl import kubectl_binary


async def test_kubectl_trusts_certificate_authority_data(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path, [])
    async with https_server(pki) as port:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(f"https://127.0.0.1:{port}", pki)))
        proc = await asyncio.create_subprocess_exec(
            kubectl_binary(), "--kubeconfig", str(kubeconfig), "get", "--raw", "/anything",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == ANSWER.decode()


def _kubeconfig(server: str, pki: Pki) -> dict[str, object]:
    ca_data = base64.b64encode(pki.ca_pem).decode()
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": server,
                                               "certificate-authority-data": ca_data}}],
        "users": [{"name": "t", "user": {"token": "unused"}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
    }
