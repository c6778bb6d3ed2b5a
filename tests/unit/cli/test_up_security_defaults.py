"""What `corral up` hands each master for the audit log (on by default) and the
encryption provider config (the master's default unless one is given)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.api.audit.policy import DEFAULT_POLICY, load_policy
from corral.cli.main import build_parser
from corral.cli.up import _master_args


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_one_master_audits_to_the_data_dir_with_the_default_policy(tmp_path: Path) -> None:
    args = build_parser().parse_args(["up", "--data-dir", str(tmp_path)])
    argv = _master_args(args, 6443, "")
    assert _flag(argv, "--audit-log-path") == str((tmp_path / "audit.log").resolve())
    policy = Path(_flag(argv, "--audit-policy-file"))
    assert policy.read_text() == DEFAULT_POLICY and policy.stat().st_mode & 0o777 == 0o600
    load_policy(policy)  # a file the master accepts
    assert "--encryption-provider-config" not in argv  # the master makes its default


def test_several_masters_each_write_their_own_log(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    args = build_parser().parse_args([
        "up", "--data-dir", str(tmp_path), "--masters", "3", "--audit-log-path",
        str(tmp_path / "a.log"), "--audit-log-maxsize", "5", "--encryption-provider-config",
        str(mine)])
    argv = _master_args(args, 6444, "etcd://127.0.0.1:2379", "https://x", 2)
    assert _flag(argv, "--audit-log-path") == str((tmp_path / "a-master-2.log").resolve())
    assert _flag(argv, "--audit-log-maxsize") == "5.0"
    assert _flag(argv, "--encryption-provider-config") == str(mine.resolve())


def test_an_unusable_audit_setup_stops_the_master_naming_the_flag(tmp_path: Path) -> None:
    from corral.api.audit.policy import PolicyError
    from corral.api.server import ApiServer, ServerConfig

    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the log's directory should be
    server = ApiServer(ServerConfig(tmp_path, audit_log_path=str(blocked / "audit.log")))
    with pytest.raises(PolicyError, match="--audit-log-path .*file/audit.log: "):
        server._open_audit()
    (tmp_path / "policy.yaml").write_text("kind: Policy\n")
    server = ApiServer(ServerConfig(tmp_path, audit_log_path=str(tmp_path / "a.log"),
                                    audit_policy_file=str(tmp_path / "policy.yaml")))
    with pytest.raises(PolicyError, match="--audit-policy-file .*policy.yaml: the file must"):
        server._open_audit()


def test_the_master_flags_up_takes_reach_the_master(tmp_path: Path) -> None:
    """Each master flag `up` accepts is handed on, and parses back the same in
    `corral master` (they were once accepted and dropped)."""
    given = ["--service-cidr", "127.177.0.0/16", "--service-node-port-range", "31700-31750",
             "--request-header-timeout", "2.5", "--max-requests-inflight", "77",
             "--max-connections", "300", "--cluster-signing-duration", "2h"]
    args = build_parser().parse_args(["up", "--data-dir", str(tmp_path), *given])
    argv = _master_args(args, 6443, "")
    master = build_parser().parse_args(argv)
    for name in ("service_cidr", "service_node_port_range", "request_header_timeout",
                 "max_requests_inflight", "max_connections", "cluster_signing_duration"):
        assert getattr(master, name) == getattr(args, name), name
    assert str(master.service_cidr) == "127.177.0.0/16"
