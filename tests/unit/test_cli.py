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


def test_help_cites_no_missing_document_and_every_tiny_flag_is_explained(capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cited = [
        f"{p.relative_to(root)}:{n}"
        for folder in ("src", "configs")
        for p in (root / folder).rglob("*")
        if p.suffix in {".py", ".yaml"}
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1)
        if "REFERENCE" in line or "../shared" in line
    ]
    assert cited == []
    with pytest.raises(SystemExit):
        main(["model", "tiny", "--help"])
    text = capsys.readouterr().out
    for flag in ("--family", "--hidden-size", "--num-layers", "--seed", "--vocab-size", "--tokenizer"):
        line = text.split(flag, 2)[2].split("\n  --")[0]  # the flag's entry in the options list
        assert len(line.split()) > 2, f"{flag} has no help: {line!r}"


def test_config_explain_never_breaks_a_key_at_80_columns():
    from rich.console import Console

    from videor1.commands.config import explain_table
    from videor1.config import Config, explain

    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(explain_table())
    text = console.export_text()
    lines = text.splitlines()
    for key, *_ in explain(Config):
        assert any(key in line for line in lines), f"{key} is wrapped mid-word at 80 columns"
