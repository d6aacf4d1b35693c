"""The CLI: every registered subcommand has help text, --version and env work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from videor1 import __version__
from videor1.cli import COMMANDS, build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"videor1 {name}" in out
    assert "not yet available" not in out, f"`videor1 {name}` is registered but its module is missing"


def test_top_level_help_lists_commands():
    text = build_parser().format_help()
    for name in COMMANDS:
        assert name in text


def test_env_json():
    out = subprocess.run(
        [sys.executable, "-m", "videor1.cli", "env", "--json"], capture_output=True, text=True, check=True
    ).stdout
    info = json.loads(out)
    assert info["videor1"] == __version__
    assert "torch" in info and "transformers" in info and "torch_threads" in info


def test_config_error_exit_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl:\n  shuffle_unit: pairs\n")
    assert main(["config", "--config", str(bad)]) == 2
