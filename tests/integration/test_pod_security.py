"""Pods on the host: whom containers run as, what they can reach, and Pod Security
admission — with the real kubectl against a real master and a real agent.

The master's data dir and the agent's state dir live under a directory every
user may search (as /var/lib is), not under pytest's 0700 temp root: a pod's
failure to read the master's keys must come from the data dir's own mode."""

from __future__ import annotations

import json
import os
import pwd
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import manifests
from tests.cluster import Agent, Master
from tests.kubectl import Kubectl
from tests.poll import wait_for


@pytest.fixture(scope="module")
def master(searchable_base: Path) -> Iterator[Master]:
    # What an older corral or a copy under umask 022 would leave: loose modes,
    # which the master must tighten when it starts.
    data = searchable_base / "master"
    (data / "pki").mkdir(parents=True)
    (data / "old-state.db").write_text("kept from before")
    for path, mode in ((data, 0o755), (data / "pki", 0o755), (data / "old-state.db", 0o644)):
        os.chmod(path, mode)
    m = Master(data).start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def node(master: Master, searchable_base: Path) -> Iterator[Agent]:
    name = f"sec-{uuid.uuid4().hex[:6]}"
    agent = Agent(master, name, searchable_base / "agents" / name, "127.0.1.31")
    try:
        yield agent.start()
    finally:
        agent.cleanup()


@pytest.fixture(scope="module")
def kubectl(master: Master, searchable_base: Path) -> Kubectl:
    return Kubectl(master, searchable_base / "kubecache")


def apply(kubectl: Kubectl, obj: dict[str, object]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def pod_json(kubectl: Kubectl, name: str, namespace: str = "default") -> dict[str, object]:
    return dict(json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json")))


def finished_log(kubectl: Kubectl, name: str) -> str:
    def done() -> bool:
        phase = pod_json(kubectl, name).get("status", {}).get("phase")  # type: ignore[union-attr]
        return phase in ("Succeeded", "Failed")
    wait_for(done, 60, f"pod {name} to finish")
    return kubectl("logs", name)


def status_line(log: str, field: str) -> list[str]:
    line = next(line for line in log.splitlines() if line.startswith(f"{field}:"))
    return line.split(":", 1)[1].split()


def waiting(kubectl: Kubectl, name: str) -> dict[str, str]:
    def reason() -> dict[str, str] | None:
        statuses = pod_json(kubectl, name).get("status", {}).get(  # type: ignore[union-attr]
            "containerStatuses") or []
        state = statuses[0].get("state", {}).get("waiting") if statuses else None
        return state if state and state.get("reason") != "ContainerCreating" else None
    return wait_for(reason, 60, f"pod {name} to wait with a reason")


SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
SHOW_IDS = ("grep -E '^(Uid|Gid|Groups):' /proc/self/status; "
            f"test -r {SA_TOKEN} && echo sa-token=readable; "
            "echo written > own-file && echo cwd-writable=$(cat own-file); "
            "cat {data}/token >/dev/null 2>&1 && echo token=read || echo token=denied; "
            "ls {data} >/dev/null 2>&1 && echo datadir=listed || echo datadir=denied")


def test_run_as_user_group_and_groups(kubectl: Kubectl, node: Agent, master: Master) -> None:
    script = SHOW_IDS.format(data=master.data_dir)
    pod = manifests.pod("as-1000", ["sh", "-c", script], nodeName=node.name,
                        restartPolicy="Never",
                        securityContext={"runAsUser": 1000, "runAsGroup": 3000,
                                         "supplementalGroups": [4000], "fsGroup": 2000})
    apply(kubectl, pod)
    log = finished_log(kubectl, "as-1000")
    assert status_line(log, "Uid") == ["1000"] * 4, log
    assert status_line(log, "Gid") == ["3000"] * 4, log
    assert {"4000", "2000"} <= set(status_line(log, "Groups")), log
    assert "0" not in status_line(log, "Groups"), log
    assert "cwd-writable=written" in log, log
    assert "token=denied" in log and "datadir=denied" in log, log
    # The denial is the data dir's own: its parent is searchable by anyone, and
    # it lets others through (to agents' state `corral up` keeps there) but lists
    # nothing, while its files are the master's alone.
    assert master.data_dir.parent.stat().st_mode & 0o001
    assert stat.S_IMODE(master.data_dir.stat().st_mode) == 0o711


def test_container_overrides_pod_and_exec_runs_as_it(kubectl: Kubectl, node: Agent) -> None:
    container = manifests.container(["sleep", "3600"],
                                    securityContext={"runAsUser": 2000, "runAsGroup": 2500})
    pod = manifests.pod("as-2000", containers=[container], nodeName=node.name,
                        securityContext={"runAsUser": 1000}, terminationGracePeriodSeconds=1)
    apply(kubectl, pod)
    kubectl("wait", "--for=condition=Ready", "pod/as-2000", "--timeout=60s")
    assert kubectl("exec", "as-2000", "--", "sh", "-c", "id -u; id -g").split() == \
        ["2000", "2500"]
    kubectl("delete", "pod", "as-2000", "--wait=false")


def test_run_as_non_root_with_root_uid_is_refused(kubectl: Kubectl, node: Agent) -> None:
    container = manifests.container(["true"], securityContext={"runAsUser": 0})
    pod = manifests.pod("nonroot-0", containers=[container], nodeName=node.name,
                        restartPolicy="Never", securityContext={"runAsNonRoot": True})
    apply(kubectl, pod)
    state = waiting(kubectl, "nonroot-0")
    uid = pod_json(kubectl, "nonroot-0")["metadata"]["uid"]  # type: ignore[index]
    assert state["reason"] == "CreateContainerConfigError"
    assert state["message"] == ("container's runAsUser breaks non-root policy "
                                f'(pod: "nonroot-0_default({uid})", container: main)')
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=nonroot-0")
    assert "breaks non-root policy" in events
    kubectl("delete", "pod", "nonroot-0", "--wait=false")


def test_a_pod_naming_no_user_runs_as_the_node_pod_user(
        kubectl: Kubectl, node: Agent, master: Master) -> None:
    """The agent's default --pod-user, corral-pod (scripts/install.sh makes it):
    not root, so runAsNonRoot alone is satisfied."""
    pod_user = pwd.getpwnam("corral-pod")
    script = SHOW_IDS.format(data=master.data_dir)
    pod = manifests.pod("as-default", ["sh", "-c", script], nodeName=node.name,
                        restartPolicy="Never", securityContext={"runAsNonRoot": True})
    apply(kubectl, pod)
    log = finished_log(kubectl, "as-default")
    assert status_line(log, "Uid") == [str(pod_user.pw_uid)] * 4, log
    assert status_line(log, "Gid") == [str(pod_user.pw_gid)] * 4, log
    assert "cwd-writable=written" in log and "token=denied" in log, log
    assert "sa-token=readable" in log, log  # its own ServiceAccount token, though
    assert pod_json(kubectl, "as-default")["status"]["phase"] == "Succeeded"  # type: ignore[index]


def modes(root: Path) -> dict[str, int]:
    """Mode of everything under root (relative path → permission bits)."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_master_data_dir_is_private_and_fixed_at_start(master: Master) -> None:
    found = modes(master.data_dir)
    for name in ("token", "state.db", "pki/ca.key", "pki/server.key", "kubeconfig",
                 "old-state.db"):
        assert name in found and found[name] & 0o077 == 0, (name, oct(found.get(name, 0)))
    assert found.pop(".") == 0o711 and found["pki"] == 0o700
    assert not {k: oct(v) for k, v in found.items() if v & 0o077}


def test_agent_state_dir_is_search_only_and_private_beneath(
        kubectl: Kubectl, node: Agent) -> None:
    pod = manifests.pod("state-modes", ["sleep", "3600"], nodeName=node.name,
                        terminationGracePeriodSeconds=1)
    apply(kubectl, pod)
    kubectl("wait", "--for=condition=Ready", "pod/state-modes", "--timeout=60s")
    found = modes(node.state_dir)
    assert found["."] == 0o711 and found["pods"] == 0o711
    assert found["runtime"] == 0o700
    # An instance's launch.json carries the container's env (secrets included).
    launches = [k for k in found if k.startswith("runtime/") and k.endswith("launch.json")]
    assert launches and all(found[k] == 0o600 for k in launches)
    assert all(found[str(Path(k).parent)] == 0o700 for k in launches)
    logs = [k for k in found if k.startswith("pods/") and k.endswith("/logs")]
    assert logs and all(found[k] == 0o700 for k in logs)
    kubectl("delete", "pod", "state-modes", "--wait=false")


# ---- Pod Security admission ---------------------------------------------------------


def namespace(kubectl: Kubectl, name: str, **labels: str) -> None:
    obj = manifests.namespace(name)
    obj["metadata"]["labels"] = {f"pod-security.kubernetes.io/{k.replace('_', '-')}": v
                                 for k, v in labels.items()}
    kubectl("create", "-f", "-", input=json.dumps(obj))


def create(kubectl: Kubectl, obj: dict[str, object]) -> tuple[int, str]:
    proc = kubectl.run("create", "-f", "-", input=json.dumps(obj))
    return proc.returncode, proc.stdout + proc.stderr


def test_restricted_namespace_refuses_a_root_pod(kubectl: Kubectl) -> None:
    namespace(kubectl, "psa-restricted", enforce="restricted")
    pod = manifests.pod("root-pod", namespace="psa-restricted",
                        securityContext={"runAsUser": 0})
    code, out = create(kubectl, pod)
    assert code != 0
    assert out.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "root-pod" is '
        'forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != '
        'false (container "main" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "main" must set securityContext.capabilities.'
        'drop=["ALL"]), runAsNonRoot != true (pod or container "main" must set '
        "securityContext.runAsNonRoot=true), runAsUser=0 (pod must not set runAsUser=0), "
        'seccompProfile (pod or container "main" must set securityContext.seccompProfile.'
        'type to "RuntimeDefault" or "Localhost")'), out
    hardened = manifests.container(securityContext={
        "runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    ok = manifests.pod("hardened", namespace="psa-restricted", containers=[hardened])
    code, out = create(kubectl, ok)
    assert code == 0 and "Warning" not in out, out


def test_default_baseline_refuses_host_network_privileged_and_working_dir(
        kubectl: Kubectl) -> None:
    privileged = manifests.container(securityContext={"privileged": True},
                                     workingDir="/srv")
    pod = manifests.pod("escape", containers=[privileged], hostNetwork=True)
    code, out = create(kubectl, pod)
    assert code != 0
    assert out.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "escape" is '
        'forbidden: violates PodSecurity "baseline:latest": host namespaces '
        '(hostNetwork=true), privileged (container "main" must not set securityContext.'
        'privileged=true), workingDir (container "main" must not set workingDir: it names '
        "a directory of the node, outside the pod's sandbox)"), out
    # A Deployment is not refused: it is warned about the pods it would make.
    template = manifests.pod_template({"app": "escaping"}, containers=[privileged],
                                      hostNetwork=True)
    deploy = manifests.deployment("escaping", 0, template=template)
    code, out = create(kubectl, deploy)
    assert code == 0, out
    assert 'Warning: would violate PodSecurity "baseline:latest": host namespaces ' \
        '(hostNetwork=true), privileged (container "main" must not set ' in out, out


def test_warn_and_privileged_enforce(kubectl: Kubectl) -> None:
    namespace(kubectl, "psa-warn", enforce="privileged", warn="restricted",
              warn_version="v1.32")
    code, out = create(kubectl, manifests.pod("noisy", namespace="psa-warn",
                                              hostNetwork=True))
    assert code == 0, out
    assert 'Warning: would violate PodSecurity "restricted:v1.32": host namespaces ' \
        "(hostNetwork=true), allowPrivilegeEscalation != false" in out, out


def test_labels_are_validated_and_raising_enforce_names_violating_pods(
        kubectl: Kubectl) -> None:
    obj = manifests.namespace("psa-bad")
    obj["metadata"]["labels"] = {"pod-security.kubernetes.io/enforce": "strict"}
    code, out = create(kubectl, obj)
    assert code != 0
    assert ('The Namespace "psa-bad" is invalid: metadata.labels[pod-security.kubernetes.io/'
            'enforce]: Invalid value: "strict": must be one of privileged, baseline, '
            "restricted") in out, out
    namespace(kubectl, "psa-raise", enforce="privileged")
    for name in ("host-a", "host-b"):
        code, out = create(kubectl, manifests.pod(name, namespace="psa-raise",
                                                  hostNetwork=True))
        assert code == 0, out
    out = kubectl.run("label", "--overwrite", "ns", "psa-raise",
                      "pod-security.kubernetes.io/enforce=baseline")
    assert out.returncode == 0, out.stderr
    assert ('Warning: existing pods in namespace "psa-raise" violate the new PodSecurity '
            'enforce level "baseline:latest"') in out.stderr
    assert "Warning: host-a (and 1 other pod): host namespaces" in out.stderr, out.stderr


# ---- task arrays: a Job run as tasks runs as its template says ------------------------


@pytest.fixture(scope="module")
def task_out(searchable_base: Path) -> Path:
    """Where the tasks of a task array write what they saw (any user may)."""
    out = searchable_base / "task-out"
    out.mkdir()
    os.chmod(out, 0o1777)
    return out


def task_ids_script(master: Master, node: Agent, out: Path) -> str:
    """One file per index: the task's ids, and whether it could read the master's
    token or the node's keys and credential."""
    return ("{ grep -E '^(Uid|Gid|Groups):' /proc/self/status; "
            f"cat {master.data_dir}/token >/dev/null 2>&1 && echo token=read "
            "|| echo token=denied; "
            f"ls {node.state_dir}/pki >/dev/null 2>&1 && echo nodepki=listed "
            "|| echo nodepki=denied; "
            f"cat {node.credential()} >/dev/null 2>&1 && echo nodecred=read "
            f"|| echo nodecred=denied; }} > {out}/$JOB_COMPLETION_INDEX")


def run_array(kubectl: Kubectl, node: Agent, name: str, script: str, completions: int,
              pod_sc: dict[str, object] | None = None,
              container_sc: dict[str, object] | None = None) -> None:
    container = manifests.container(["sh", "-c", script], name="task",
                                    **({"securityContext": container_sc} if container_sc else {}))
    template = manifests.pod_template(containers=[container], restartPolicy="Never",
                                      **({"securityContext": pod_sc} if pod_sc else {}))
    apply(kubectl, manifests.task_array(name, completions, template=template,
                                        parallelism=completions))
    kubectl("wait", "--for=condition=complete", f"job/{name}", "--timeout=90s")


def test_a_task_array_runs_as_its_template_says(kubectl: Kubectl, node: Agent,
                                                master: Master, task_out: Path) -> None:
    """Pod and container securityContext merged as for a pod (the container's
    runAsGroup over the pod's); a template naming no user runs as the node's pod
    user; neither reads the master's data dir nor the node's credentials."""
    out = task_out / "ids"
    out.mkdir()
    os.chmod(out, 0o1777)
    run_array(kubectl, node, "arr-as-1000", task_ids_script(master, node, out), 2,
              pod_sc={"runAsUser": 1000, "runAsGroup": 2000, "supplementalGroups": [4000]},
              container_sc={"runAsGroup": 3000})
    for index in ("0", "1"):
        seen = (out / index).read_text()
        assert status_line(seen, "Uid") == ["1000"] * 4, seen
        assert status_line(seen, "Gid") == ["3000"] * 4, seen
        assert "4000" in status_line(seen, "Groups") and "0" not in status_line(
            seen, "Groups"), seen
        assert "token=denied" in seen and "nodepki=denied" in seen, seen
        assert "nodecred=denied" in seen, seen
    default = task_out / "default"
    default.mkdir()
    os.chmod(default, 0o1777)
    run_array(kubectl, node, "arr-as-default", task_ids_script(master, node, default), 1)
    seen = (default / "0").read_text()
    pod_user = pwd.getpwnam("corral-pod")
    assert status_line(seen, "Uid") == [str(pod_user.pw_uid)] * 4, seen
    assert "token=denied" in seen and "nodecred=denied" in seen, seen


def test_a_task_array_with_run_as_non_root_and_root_waits(kubectl: Kubectl,
                                                          node: Agent) -> None:
    container = manifests.container(["true"], name="task", securityContext={"runAsUser": 0})
    template = manifests.pod_template(containers=[container], restartPolicy="Never",
                                      securityContext={"runAsNonRoot": True})
    apply(kubectl, manifests.task_array("arr-nonroot", 1, template=template))

    def waiting_alloc() -> dict[str, object] | None:
        allocs = json.loads(kubectl("get", "allocs", "-l",
                                    "batch.kubernetes.io/job-name=arr-nonroot", "-o", "json"))
        st = allocs["items"][0].get("status", {}) if allocs["items"] else {}
        return st if st.get("reason") else None
    st = wait_for(waiting_alloc, 60, "the Alloc waiting with a reason")
    assert st["reason"] == "CreateContainerConfigError" and st["phase"] == "Pending", st
    assert str(st["message"]).startswith("container's runAsUser breaks non-root policy"), st
    kubectl("delete", "job", "arr-nonroot", "--wait=false")


def test_a_restricted_namespace_refuses_a_root_task_array(kubectl: Kubectl) -> None:
    """No Pod is ever made for a task array's tasks: its Job's template is held
    to the namespace's enforce level itself, in Kubernetes' words."""
    namespace(kubectl, "psa-arrays", enforce="restricted")
    container = manifests.container(["true"], name="task", securityContext={"runAsUser": 0})
    template = manifests.pod_template(containers=[container], restartPolicy="Never")
    code, out = create(kubectl, manifests.task_array("root-tasks", 3, template=template,
                                                     namespace="psa-arrays"))
    assert code != 0
    assert out.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": jobs.batch "root-tasks" '
        'is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != '
        'false (container "task" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "task" must set securityContext.capabilities.'
        'drop=["ALL"]), runAsNonRoot != true (pod or container "task" must set '
        'securityContext.runAsNonRoot=true), runAsUser=0 (container "task" must not set '
        'runAsUser=0), seccompProfile (pod or container "task" must set securityContext.'
        'seccompProfile.type to "RuntimeDefault" or "Localhost")'), out
    # The same template as an ordinary Job is only warned about (its pods are refused).
    plain = manifests.job("root-pods", template=template, namespace="psa-arrays")
    code, out = create(kubectl, plain)
    assert code == 0 and 'Warning: would violate PodSecurity "restricted:latest"' in out, out


def test_an_alloc_written_by_hand_is_held_to_the_same_rules(master: Master) -> None:
    """No way around the above by writing an Alloc directly: a task array's Alloc
    is the pod its tasks stand for to Pod Security, and a framework task's user
    needs RBAC's "run" on taskusers.corral.dev (Mesos' run_tasks) from whoever
    writes it, as the Mesos endpoint asks it of a framework's principal."""
    from corral.api.auth import User
    from corral.api.token_store import replace_token

    allocs = "/apis/corral.dev/v1/namespaces/{ns}/allocs"
    root_array = {"apiVersion": "corral.dev/v1", "kind": "Alloc",
                  "metadata": {"name": "by-hand"},
                  "spec": {"ranges": "0", "securityContext": {"runAsUser": 0},
                           "task": {"name": "t", "command": ["true"]}}}
    with master.http() as http:
        r = http.post(allocs.format(ns="psa-arrays"), json=root_array)
        assert r.status_code == 403, r.text
        assert r.json()["message"].startswith(
            'allocs.corral.dev "by-hand" is forbidden: violates PodSecurity '
            '"restricted:latest": allowPrivilegeEscalation != false'), r.text
        http.post("/api/v1/namespaces", json=manifests.namespace("alloc-writers"))
        binding = {"metadata": {"name": "jane-edits"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "edit"},
                   "subjects": [{"kind": "User", "name": "jane"}]}
        r = http.post("/apis/rbac.authorization.k8s.io/v1/namespaces/alloc-writers/"
                      "rolebindings", json=binding)
        assert r.status_code == 201, r.text
    token = replace_token(master.data_dir, User("jane", "jane", ()))
    as_root = {"apiVersion": "corral.dev/v1", "kind": "Alloc",
               "metadata": {"name": "root-task"},
               "spec": {"tasks": [{"id": "t", "command": ["true"], "user": "root"}]}}
    with httpx.Client(base_url=master.url, verify=str(master.ca_path), timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as jane:
        r = jane.post(allocs.format(ns="alloc-writers"), json=as_root)
        assert r.status_code == 403, r.text
        assert r.json()["message"] == (
            'allocs.corral.dev "root-task" is forbidden: user "jane" may not run tasks as '
            '"root" (RBAC: "run" on taskusers.corral.dev "root")')
        del as_root["spec"]["tasks"][0]["user"]  # type: ignore[index]
        r = jane.post(allocs.format(ns="alloc-writers"), json=as_root)
        assert r.status_code == 201, r.text  # no user: the node's pod user runs it
        jane.delete(f"{allocs.format(ns='alloc-writers')}/root-task")
