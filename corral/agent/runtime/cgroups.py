"""Per-container resource isolation: cgroup v2, cgroup v1, or rlimits.

Detection (``detect_isolation``) prefers, in order:

    cgroup-v2   a cgroup2 mount whose root offers the memory controller
                (/sys/fs/cgroup on a pure-v2 host, /sys/fs/cgroup/unified on a
                hybrid one — there it usually offers none, the v1 ones own them)
    cgroup-v1   a writable v1 memory hierarchy (/sys/fs/cgroup/memory), plus cpu,
                cpuacct and pids where mounted
    rlimits     nothing writable: RLIMIT_AS and RLIMIT_NPROC in the child; the
                Isolation report says what that does not enforce

Each pod gets ``<mount>/<parent>/pod-<uid>`` in every hierarchy used (an agent's
parent is its own, ``corral/<node>-<hex>``: see node_parent), holding the
pod's pids limit (the kubelet's podPidsLimit: all its containers' processes count
together), and each of its instances ``.../pod-<uid>/<container_id>`` below it
with the container's own limits; the pod's group goes when the pod does.
Limits follow the kubelet: quota = limit millis × period / 1000 (period 100 ms),
shares = request millis × 1024 / 1000 (min 2), v2 weight converted from shares.
The agent's parent weighs what the node's pods and Allocs may use together, as
the kubelet's kubepods group does: cpu.shares (v2: cpu.weight) for the node's
allocatable CPU, and the host's parent (``corral``) the sum of its agents'. Left
at the default, every pod and task of the host together weighed as much as one
process of the host's own (an agent, a master), and starved behind them when
the CPUs were busy. See ``CgroupSystem.weigh``.
The shim creates the group, moves its child in before exec (``join`` in the
child's preexec), and removes the group once everything in it has exited.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.runtime.base import Isolation, ResourceUsage

CFS_PERIOD_US = 100_000
MIN_SHARES = 2
MAX_SHARES = 262_144
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
V2_CONTROLLERS = ("memory", "cpu", "pids")
POD_PREFIX = "pod-"  # <parent>/pod-<uid>/<container id>: the pod's group holds its pids limit


@dataclass(frozen=True)
class Limits:
    cpu_request_millis: int | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    pids_limit: int | None = None


def cpu_shares(request_millis: int | None) -> int:
    """v1 cpu.shares for a CPU request; no request gets the minimum, as in Kubernetes."""
    if not request_millis:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, request_millis * 1024 // 1000))


def cpu_weight(shares: int) -> int:
    """v2 cpu.weight (1..10000) for v1 shares (2..262144): the kubelet's mapping."""
    return 1 + ((shares - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


def cpu_quota_us(limit_millis: int, period_us: int = CFS_PERIOD_US) -> int:
    return max(1000, limit_millis * period_us // 1000)


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read_keyed(path: Path) -> dict[str, int]:
    """Parse "key value" lines (memory.stat, memory.events, oom_control)."""
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


@dataclass(frozen=True)
class ContainerCgroup:
    """One instance's cgroup directories: v1 one per controller, v2 one ("unified")."""

    version: int
    dirs: dict[str, str]
    # controller (v1) or "unified" (v2) → mount point; empty in a cgroup.json
    # written before roots were recorded, which then cannot use hold().
    roots: dict[str, str] = field(default_factory=dict)

    def _unique_dirs(self) -> list[Path]:
        return sorted({Path(d) for d in self.dirs.values()})

    def _dir(self, controller: str) -> Path | None:
        key = "unified" if self.version == 2 else controller
        return Path(self.dirs[key]) if key in self.dirs else None

    def create(self, limits: Limits) -> None:
        """Make the directories and write the limits. Raises OSError if refused."""
        for d in self._unique_dirs():
            d.mkdir(parents=True, exist_ok=True)
        if self.version == 2:
            self._limit_v2(limits)
        else:
            self._limit_v1(limits)

    def _limit_v1(self, limits: Limits) -> None:
        mem, cpu, pids = self._dir("memory"), self._dir("cpu"), self._dir("pids")
        if mem and limits.memory_limit_bytes:
            _write(mem / "memory.limit_in_bytes", str(limits.memory_limit_bytes))
        if cpu:
            _write(cpu / "cpu.shares", str(cpu_shares(limits.cpu_request_millis)))
            if limits.cpu_limit_millis:
                _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
                _write(cpu / "cpu.cfs_quota_us", str(cpu_quota_us(limits.cpu_limit_millis)))
        if pids and limits.pids_limit:
            _write(pids / "pids.max", str(limits.pids_limit))

    def _limit_v2(self, limits: Limits) -> None:
        d = Path(self.dirs["unified"])
        if limits.memory_limit_bytes:
            _write(d / "memory.max", str(limits.memory_limit_bytes))
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "0")
        if (d / "cpu.weight").exists():
            _write(d / "cpu.weight", str(cpu_weight(cpu_shares(limits.cpu_request_millis))))
        if limits.cpu_limit_millis and (d / "cpu.max").exists():
            _write(d / "cpu.max", f"{cpu_quota_us(limits.cpu_limit_millis)} {CFS_PERIOD_US}")
        if limits.pids_limit and (d / "pids.max").exists():
            _write(d / "pids.max", str(limits.pids_limit))

    def create_pod_group(self, pids_limit: int | None) -> None:
        """Make a pod's group, the parent of its containers' groups, holding the
        pod's pids limit (the kubelet's podPidsLimit: one count for all its
        containers) and nothing else; on v2 it passes the controllers down.
        Idempotent: an adopted pod's group is only written again."""
        for d in self._unique_dirs():
            d.mkdir(parents=True, exist_ok=True)
        pids = self._dir("pids")
        if pids is not None and pids_limit and (pids / "pids.max").exists():
            _write(pids / "pids.max", str(pids_limit))
        if self.version == 2:
            unified = Path(self.dirs["unified"])
            offered = (unified / "cgroup.controllers").read_text().split()
            wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in offered)
            if wanted:
                _write(unified / "cgroup.subtree_control", wanted)

    def child(self, name: str) -> ContainerCgroup:
        """The group ``name`` directly below this one, in every hierarchy."""
        return ContainerCgroup(self.version, {k: str(Path(d) / name) for k, d in self.dirs.items()},
                               dict(self.roots))

    def pod_group(self) -> ContainerCgroup | None:
        """The group of the pod this instance's group sits in, if it sits in one."""
        parents = {k: Path(d).parent for k, d in self.dirs.items()}
        if not all(p.name.startswith(POD_PREFIX) for p in parents.values()):
            return None
        return ContainerCgroup(self.version, {k: str(p) for k, p in parents.items()},
                               dict(self.roots))

    def pids_max(self) -> int | None:
        """The pids limit written here; None for "max" or no pids controller."""
        pids = self._dir("pids")
        try:
            value = (pids / "pids.max").read_text().strip() if pids is not None else "max"
        except OSError:
            return None
        return None if value == "max" else int(value)

    def procs_files(self) -> tuple[str, ...]:
        """The ``cgroup.procs`` a process writes its pid to, to join the group."""
        return tuple(str(d / "cgroup.procs") for d in self._unique_dirs())

    def join(self, pid: int) -> None:
        """Move a process in (the shim's child calls this on itself before exec)."""
        for d in self._unique_dirs():
            _write(d / "cgroup.procs", str(pid))

    @contextlib.contextmanager
    def hold(self, pid: int) -> Iterator[None]:
        """Keep ``pid`` (the shim) in the group for the block, then put it back
        where it was. A child it spawns meanwhile starts inside with no code run
        between fork and exec, so Popen can vfork, where joining from a
        preexec_fn costs a full fork of the shim. Raises LookupError (before
        moving anything) when the way back is unknown."""
        homes = self._homes(pid)
        self.join(pid)
        try:
            yield
        finally:
            for home in homes:
                _write(home / "cgroup.procs", str(pid))

    def _homes(self, pid: int) -> list[Path]:
        """The groups ``pid`` is in now, in each hierarchy this group spans."""
        if not self.roots:
            raise LookupError("no cgroup roots recorded")
        where: dict[str, str] = {}  # controller (or "unified") → path in its hierarchy
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in (controllers.split(",") if controllers else ["unified"]):
                where[controller] = path
        homes: set[Path] = set()
        for key in self.dirs:
            if key not in where or key not in self.roots:
                raise LookupError(f"no {key} cgroup for pid {pid}")
            homes.add(Path(self.roots[key]) / where[key].lstrip("/"))
        return sorted(homes)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self._unique_dirs():
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return sorted(found)

    def kill_all(self) -> None:
        """SIGKILL everything inside, including processes that left the group's
        process group (double-forked daemons)."""
        unified = self._dir("unified") if self.version == 2 else None
        if unified and (unified / "cgroup.kill").exists():
            try:
                _write(unified / "cgroup.kill", "1")
                return
            except OSError:
                pass
        for _ in range(3):  # a process may fork while we iterate
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def oom_kills(self) -> int:
        """How many processes the memory controller killed in this group."""
        mem = self._dir("memory")
        if mem is None:
            return 0
        try:
            if self.version == 2:
                return _read_keyed(mem / "memory.events").get("oom_kill", 0)
            counters = _read_keyed(mem / "memory.oom_control")
            if "oom_kill" in counters:
                return counters["oom_kill"]
            # Kernels before 4.13 have no counter; a hit limit is the best sign.
            return int((mem / "memory.failcnt").read_text().strip() != "0")
        except OSError:
            return 0

    def usage(self) -> ResourceUsage | None:
        try:
            return ResourceUsage(self._cpu_ns(), self._working_set(), time.time())
        except (OSError, ValueError):
            return None

    def _cpu_ns(self) -> int:
        if self.version == 2:
            usec = _read_keyed(Path(self.dirs["unified"]) / "cpu.stat")["usage_usec"]
            return usec * 1000
        acct = self._dir("cpuacct")
        return int((acct / "cpuacct.usage").read_text()) if acct else 0

    def _working_set(self) -> int:
        # Kubernetes' working set: usage minus inactive file cache.
        mem = self._dir("memory")
        if mem is None:
            return 0
        if self.version == 2:
            usage = int((mem / "memory.current").read_text())
            inactive = _read_keyed(mem / "memory.stat").get("inactive_file", 0)
        else:
            usage = int((mem / "memory.usage_in_bytes").read_text())
            inactive = _read_keyed(mem / "memory.stat").get("total_inactive_file", 0)
        return max(0, usage - inactive)

    def remove(self) -> bool:
        """Remove the directories; False while processes remain (retry later)."""
        done = True
        for d in self._unique_dirs():
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done

    def kill_and_remove(self, attempts: int = 10, pause: float = 0.01) -> bool:
        """SIGKILL what is inside and remove the directories, retrying while the
        killed (or just exited) processes are still leaving: a group is busy
        until its last process is reaped. False if it is still there after
        ``attempts``; the caller must keep its record to try again later."""
        for attempt in range(attempts):
            self.kill_all()
            if self.remove():
                return True
            if attempt + 1 < attempts:
                time.sleep(pause)
        return False

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "dirs": dict(self.dirs), "roots": dict(self.roots)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ContainerCgroup:
        dirs, roots = data["dirs"], data.get("roots") or {}
        assert isinstance(dirs, dict) and isinstance(roots, dict)
        return cls(version=int(str(data["version"])), dirs={str(k): str(v) for k, v in dirs.items()},
                   roots={str(k): str(v) for k, v in roots.items()})


@dataclass(frozen=True)
class CgroupSystem:
    """The hierarchies in use: v1 controller → mount point, or v2 {"unified": mount}."""

    version: int
    roots: dict[str, str]
    parent: str = "corral"

    def for_container(self, container_id: str, pod_uid: str | None = None) -> ContainerCgroup:
        """A container instance's group: inside its pod's group when it has a pod."""
        where = f"{POD_PREFIX}{pod_uid}/{container_id}" if pod_uid else container_id
        return self._group(where)

    def owns(self, group: ContainerCgroup) -> bool:
        """Whether ``group`` sits directly in this system's parent."""
        mine = self._group("")
        return all(Path(d).parent == Path(mine.dirs.get(k, "")) for k, d in group.dirs.items())

    def weigh(self, allocatable_cpu_millis: int) -> None:
        """Give the agent's parent the weight of the node's allocatable CPU, and each
        level above it within ``corral`` the sum of the weights below it."""
        key = "cpu" if self.version == 1 else "unified"
        root = self.roots.get(key)
        if root is None:
            return
        parts = Path(self.parent).parts
        mine = Path(root, *parts)
        self._set_shares(mine, cpu_shares(allocatable_cpu_millis))
        for depth in range(len(parts) - 1, 0, -1):
            level = Path(root, *parts[:depth])
            total = sum(self._shares(child) for child in level.iterdir() if child.is_dir())
            self._set_shares(level, min(max(total, MIN_SHARES), MAX_SHARES))

    def _shares(self, group: Path) -> int:
        try:
            if self.version == 1:
                return int((group / "cpu.shares").read_text())
            weight = int((group / "cpu.weight").read_text())
        except (OSError, ValueError):
            return 0
        # Back from v2 weight to shares: cpu_weight's inverse.
        return MIN_SHARES + ((weight - 1) * (MAX_SHARES - MIN_SHARES)) // 9999

    def _set_shares(self, group: Path, shares: int) -> None:
        if self.version == 1:
            _write(group / "cpu.shares", str(shares))
        elif (group / "cpu.weight").exists():
            _write(group / "cpu.weight", str(cpu_weight(shares)))

    def remove_parent(self) -> bool:
        """Remove the parent's own directories once nothing is left in them (a
        node's, when its agent ends having stopped everything); False while any
        group remains inside."""
        return self._group("").remove()

    def for_pod(self, pod_uid: str) -> ContainerCgroup:
        return self._group(f"{POD_PREFIX}{pod_uid}")

    def pod_uids(self) -> list[str]:
        """The pods that have a group here (a restarted agent adopts them)."""
        root = Path(next(iter(self.roots.values()))) / self.parent
        try:
            return sorted(p.name[len(POD_PREFIX):] for p in root.iterdir()
                          if p.is_dir() and p.name.startswith(POD_PREFIX))
        except OSError:
            return []

    def _group(self, where: str) -> ContainerCgroup:
        dirs = {c: str(Path(root, self.parent, where)) for c, root in self.roots.items()}
        return ContainerCgroup(self.version, dirs, dict(self.roots))


def node_parent(host_parent: str, node: str, state_dir: Path) -> str:
    """The parent of one agent's groups, ``<host_parent>/<node>-<state_tag>``: its
    own, so an agent's sweep never meets another's pods on a shared host."""
    return f"{host_parent}/{node[:200]}-{state_tag(state_dir)}"


def state_tag(state_dir: Path) -> str:
    """8 hex of the agent's state dir: stable across its restarts, and unique on
    the host even for namesake nodes of two clusters (test runs side by side)."""
    return hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]


def parse_mountinfo(text: str) -> tuple[str | None, dict[str, str]]:
    """(cgroup2 mount point or None, v1 controller → mount point) from mountinfo."""
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        if not sep:
            continue
        fields, after = pre.split(), post.split()
        if len(fields) < 5 or len(after) < 3:
            continue
        mount_point, fstype, options = fields[4], after[0], after[2].split(",")
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for controller in V1_CONTROLLERS:
                if controller in options:
                    v1.setdefault(controller, mount_point)
    return v2, v1


def _v2_system(mount: str, parent: str) -> tuple[CgroupSystem | None, str]:
    root = Path(mount)
    try:
        offered = set((root / "cgroup.controllers").read_text().split())
    except OSError as exc:
        return None, f"cgroup2 at {mount} unreadable ({exc.strerror})"
    if "memory" not in offered:
        return None, f"cgroup2 at {mount} offers no memory controller (offers: {sorted(offered)})"
    wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in offered)
    try:
        _write(root / "cgroup.subtree_control", wanted)
        level = root
        for part in Path(parent).parts:  # each level passes the controllers down
            level = level / part
            level.mkdir(exist_ok=True)
            _write(level / "cgroup.subtree_control", wanted)
    except OSError as exc:
        return None, f"cgroup2 at {mount} not writable ({exc.strerror})"
    return CgroupSystem(2, {"unified": mount}, parent), f"cgroup2 at {mount}"


def _v1_system(mounts: dict[str, str], parent: str) -> tuple[CgroupSystem | None, str]:
    if "memory" not in mounts:
        return None, "no cgroup v1 memory hierarchy mounted"
    usable: dict[str, str] = {}
    for controller, mount in mounts.items():
        try:
            (Path(mount) / parent).mkdir(parents=True, exist_ok=True)
            usable[controller] = mount
        except OSError:
            continue
    if "memory" not in usable:
        return None, f"cgroup v1 memory at {mounts['memory']} not writable"
    where = ", ".join(f"{c}={m}" for c, m in sorted(usable.items()))
    return CgroupSystem(1, usable, parent), f"cgroup v1 ({where})"


def detect_isolation(
    parent: str = "corral", mountinfo: str | None = None, allow_cgroups: bool = True,
) -> tuple[CgroupSystem | None, Isolation]:
    """Find the best writable mechanism; creates the ``parent`` groups it will use."""
    if not allow_cgroups:
        return None, rlimits_isolation("cgroups disabled by configuration")
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    v2_mount, v1_mounts = parse_mountinfo(mountinfo)
    reasons: list[str] = []
    if v2_mount is not None:
        system, why = _v2_system(v2_mount, parent)
        if system is not None:
            return system, Isolation("cgroup-v2", f"using {why}", ("memory", "cpu", "pids"))
        reasons.append(why)
    system, why = _v1_system(v1_mounts, parent)
    if system is not None:
        enforced = tuple(c for c in ("memory", "cpu", "pids") if c in system.roots)
        return system, Isolation("cgroup-v1", f"using {why}", enforced)
    reasons.append(why)
    return None, rlimits_isolation("; ".join(reasons) or "no cgroup mounted")


def rlimits_isolation(why: str) -> Isolation:
    return Isolation(
        "rlimits",
        f"no writable cgroup ({why}): memory limited by RLIMIT_AS (virtual, not "
        "resident, memory), pids by RLIMIT_NPROC (per user, not enforced for root); "
        "CPU limits and OOM detection not enforced",
        ("memory-virtual", "pids-per-user"),
    )


def apply_rlimits(limits: Limits) -> None:
    """The fallback, called in the child before exec."""
    if limits.memory_limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_limit_bytes,) * 2)
    if limits.pids_limit:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.pids_limit,) * 2)
