"""The pure parts of the node's streams: protocol choice, Statuses, exec's argv,
port lists."""

from __future__ import annotations

import pytest

from corral.agent.runtime.base import ExecEnvironment
from corral.agent.streams.channels import exit_status, negotiate
from corral.agent.streams.exec import JOIN_CGROUP, ExecError, ExecOptions, command_argv
from corral.agent.streams.portforward_channels import parse_ports


def test_the_first_offered_protocol_we_speak_wins() -> None:
    assert negotiate(["v5.channel.k8s.io", "v4.channel.k8s.io"]) == "v5.channel.k8s.io"
    assert negotiate(["channel.k8s.io", "v4.channel.k8s.io"]) == "v4.channel.k8s.io"
    assert negotiate(["v3.channel.k8s.io"]) is None


def test_exit_codes_as_kubelet_statuses() -> None:
    assert exit_status(0) == {"metadata": {}, "status": "Success"}
    failed = exit_status(137)
    assert (failed["status"], failed["reason"]) == ("Failure", "NonZeroExitCode")
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "137"}]


def test_exec_options_from_kubectls_query() -> None:
    opts = ExecOptions.from_query(["sh"], {"stdin": "true", "stdout": "true",
                                           "stderr": "true", "tty": "true"})
    # a terminal has one output: stderr is not a stream of its own
    assert (opts.stdin, opts.stdout, opts.stderr, opts.tty) == (True, True, False, True)


def test_exec_argv_joins_the_cgroup_and_takes_the_terminal() -> None:
    env = ExecEnvironment({"PATH": "/usr/bin:/bin"}, "/tmp", ("/cg/memory/c1/cgroup.procs",))
    argv = command_argv(ExecOptions(["sh", "-c", "echo"], tty=True), env)
    assert argv[:3] == ["setsid", "--ctty", "/bin/sh"]
    assert argv[3:8] == ["-c", JOIN_CGROUP, "sh", "1", "/cg/memory/c1/cgroup.procs"]
    assert argv[8:] in (["/usr/bin/sh", "-c", "echo"], ["/bin/sh", "-c", "echo"])
    plain = command_argv(ExecOptions(["true"]), ExecEnvironment({"PATH": "/bin"}, "/tmp"))
    assert plain == ["/bin/true"]
    with pytest.raises(ExecError, match='exec: "nope": executable file not found in \\$PATH'):
        command_argv(ExecOptions(["nope"]), env)


def test_port_lists() -> None:
    assert parse_ports(["8080,9090", "53"]) == [8080, 9090, 53]
    for bad in ([], ["0"], ["70000"], ["http"]):
        with pytest.raises(ValueError):
            parse_ports(bad)
