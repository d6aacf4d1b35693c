"""Every benchmark script runs at toy size (``--toy``: tiny sizes, no peers), so none can rot.

No timing is asserted: each script must exit 0 and end with its one-line JSON result
(``bench/README.md``). A new ``bench/*.py`` is covered by the glob without editing this file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_bench_scripts():
    assert {"decode.py", "rewards.py", "rl_step.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_bench_script_runs_at_toy_size(script):
    proc = subprocess.run(
        [sys.executable, str(script), "--toy"],
        cwd=ROOT,  # as bench/README.md runs them
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{script.name} --toy exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{script.name} --toy printed nothing"
    result = json.loads(lines[-1])
    assert isinstance(result, dict) and result, f"{script.name}: the last line is not a non-empty JSON object"
