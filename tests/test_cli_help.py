"""`handviz --help`, `--version` and every subcommand's `--help` work.

Subcommands are discovered from handviz.commands.COMMAND_MODULES, so a command added later is
covered without editing this file.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

import pytest

from handviz import __version__
from handviz.cli import build_parser, main
from handviz.commands import COMMAND_MODULES


@pytest.fixture(autouse=True)
def private_logs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep any log file the CLI writes out of the user's state folder."""
    monkeypatch.setenv("HANDVIZ_LOG_DIR", str(tmp_path / "logs"))


def written_command_modules() -> list[str]:
    """Modules in the registry whose file exists (the CLI skips ones still being written)."""
    return [name for name in COMMAND_MODULES
            if importlib.util.find_spec(f"handviz.commands.{name}") is not None]


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1, "the root parser should have one set of subcommands"
    return dict(actions[0].choices)


def run_handviz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "handviz", *args],
                          capture_output=True, text=True, timeout=120)


def test_root_help_lists_every_subcommand() -> None:
    done = run_handviz("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: handviz")
    for name in subcommand_parsers():
        assert name in done.stdout


def test_version() -> None:
    done = run_handviz("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"handviz {__version__}"


def test_unknown_option_is_a_usage_error() -> None:
    done = run_handviz("--no-such-option")
    assert done.returncode == 2
    assert "usage: handviz" in done.stderr


def test_every_written_module_registers_a_runnable_command() -> None:
    parsers = subcommand_parsers()
    assert len(parsers) == len(written_command_modules())
    for name, sub in parsers.items():
        assert callable(sub.get_default("func")), f"`handviz {name}` does not set func=run"


@pytest.mark.parametrize("command", sorted(subcommand_parsers()))
def test_subcommand_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: handviz {command}")
