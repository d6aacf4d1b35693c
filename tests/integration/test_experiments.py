"""The rerunnable experiments behind docs/ still run on today's code (toy sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


@pytest.fixture
def experiments_on_path(monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(EXPERIMENTS))  # the scripts import each other as siblings
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the scripts pin one thread for themselves


def test_tiny_ablation_quick_writes_a_result_and_the_table(tmp_path, experiments_on_path):
    import tiny_ablation

    table = tmp_path / "table.md"
    args = ["--quick", "--out", str(tmp_path), "--only", "mix-q3-pos-nocot-lr1e-4", "--table", str(table)]
    assert tiny_ablation.main(args) == 0
    result = json.loads((tmp_path / "quick" / "mix-q3-pos-nocot-lr1e-4" / "result.json").read_text())
    assert set(result["scores"]) == set(tiny_ablation.FIVE)
    assert all(0.0 <= v <= 1.0 for f in result["scores"].values() for v in f.values())
    text = table.read_text()
    assert "<!-- ablation-table:start -->" in text and "| mix-q3-pos-nocot-lr1e-4 |" in text
    # the grid names are unique and every run is reachable by --only
    names = [r.name for r in tiny_ablation.RUNS]
    assert len(names) == len(set(names))


def test_position_probe_quick_reads_the_quadrant_only_with_the_scaled_table(capsys, experiments_on_path):
    import position_probe

    assert position_probe.main(["--quick"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "probe accuracy" in line]
    assert len(lines) == 3
    scaled = [line for line in lines if "scaled to patches" in line]
    assert scaled and float(scaled[0].rsplit(" ", 1)[1].rstrip("%")) >= 90.0
