"""cgroup detection from mountinfo, and the kubelet's limit arithmetic."""

from __future__ import annotations

from pathlib import Path

from corral.agent.runtime.cgroups import (
    ContainerCgroup,
    cpu_quota_us,
    cpu_shares,
    cpu_weight,
    detect_isolation,
    parse_mountinfo,
)

HYBRID = """\
25 22 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
30 25 0:27 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
31 25 0:28 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
"""


def test_parse_hybrid_mounts_with_comounted_cpu() -> None:
    v2, v1 = parse_mountinfo(HYBRID)
    assert v2 == "/sys/fs/cgroup/unified"
    assert v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                  "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}


def test_parse_pure_v2() -> None:
    v2, v1 = parse_mountinfo("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert (v2, v1) == ("/sys/fs/cgroup", {})


def test_kubelet_cpu_arithmetic() -> None:
    assert cpu_shares(None) == 2 and cpu_shares(1) == 2
    assert cpu_shares(100) == 102 and cpu_shares(1000) == 1024
    assert cpu_weight(2) == 1 and cpu_weight(262144) == 10000 and cpu_weight(1024) == 39
    assert cpu_quota_us(200) == 20000 and cpu_quota_us(1) == 1000  # kernel minimum 1 ms


def test_nothing_writable_falls_back_to_rlimits_and_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    mountinfo = f"1 0 0:1 / {missing} rw - cgroup2 cgroup2 rw\n"
    system, isolation = detect_isolation("corral-test", mountinfo=mountinfo)
    assert system is None and isolation.mechanism == "rlimits"
    assert str(missing) in isolation.reason and "RLIMIT_AS" in isolation.reason
    _, disabled = detect_isolation(allow_cgroups=False)
    assert disabled.mechanism == "rlimits" and "disabled by configuration" in disabled.reason


def test_v2_without_memory_controller_falls_to_v1(tmp_path: Path) -> None:
    unified, memory = tmp_path / "unified", tmp_path / "memory"
    unified.mkdir()
    memory.mkdir()
    (unified / "cgroup.controllers").write_text("hugetlb\n")
    mountinfo = (f"1 0 0:1 / {unified} rw - cgroup2 cgroup2 rw\n"
                 f"2 0 0:2 / {memory} rw - cgroup cgroup rw,memory\n")
    system, isolation = detect_isolation("corral", mountinfo=mountinfo)
    assert isolation.mechanism == "cgroup-v1" and isolation.enforced == ("memory",)
    assert system is not None and (memory / "corral").is_dir()
    cgroup = system.for_container("uid_c_0")
    assert cgroup.dirs == {"memory": str(memory / "corral" / "uid_c_0")}
    assert ContainerCgroup.from_dict(cgroup.to_dict()) == cgroup
