"""The command line imports only the module of the command it runs, so its table of
commands must name every command the modules register, and each exactly once."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from corral.cli.main import COMMANDS, build_parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_the_table_names_every_command_the_modules_register() -> None:
    assert _commands(build_parser()) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_alone_registers_the_same_parser(command: str) -> None:
    alone = build_parser(command)
    assert command in _commands(alone)
    assert _commands(alone) <= set(COMMANDS)


def test_a_run_imports_only_its_own_command() -> None:
    probe = ("import sys\nfrom corral.cli.main import main\n"
             "try:\n    main(['token', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('corral.cli.')))")
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True)
    assert ran.stdout.strip().splitlines()[-1] == "['corral.cli.main', 'corral.cli.token']"


def test_an_unknown_command_lists_them_all(capsys: pytest.CaptureFixture[str]) -> None:
    from corral.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'no-such-command'" in err and "'agent'" in err
