"""Claim volumes as kept directories: created on first use, linked at the mount
path inside the pod's own working dir, named in the environment; a claim or
mount path that would leave its directory is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.agent.volumes import VolumeError, mount_claims

POD = {"metadata": {"namespace": "default", "name": "web-0"},
       "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
                            {"name": "tmp", "emptyDir": {}}]}}
CONTAINER = {"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/var/data"},
                                           {"name": "tmp", "mountPath": "/tmp/x"}]}


def test_a_claim_is_a_kept_directory_linked_into_the_working_dir(tmp_path: Path) -> None:
    root, work = tmp_path / "volumes", tmp_path / "pod" / "work"
    env = mount_claims(POD, CONTAINER, root, work)
    kept = (root / "default" / "data-web-0").resolve()
    assert env == {"CORRAL_VOLUME_DATA": str(kept)}
    (work / "var" / "data" / "f").write_text("x")
    assert (kept / "f").read_text() == "x"
    # The pod's directory goes; the kept one stays and is linked again next time.
    (work / "var" / "data").unlink()
    assert mount_claims(POD, CONTAINER, root, work) == env
    assert (work / "var" / "data" / "f").read_text() == "x"
    # A container with its own workingDir gets the variable only.
    assert mount_claims(POD, CONTAINER, root, None) == env


@pytest.mark.parametrize(("claim", "mount_path"), [("..", "/data"), ("a/b", "/data"),
                                                   ("ok", "/../etc"), ("ok", "/")])
def test_paths_that_leave_their_directory_are_refused(tmp_path: Path, claim: str,
                                                      mount_path: str) -> None:
    pod = {"metadata": {"namespace": "default"}, "spec": {"volumes": [
        {"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}
    container = {"volumeMounts": [{"name": "data", "mountPath": mount_path}]}
    with pytest.raises(VolumeError):
        mount_claims(pod, container, tmp_path / "volumes", tmp_path / "work")
