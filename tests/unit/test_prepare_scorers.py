"""``prepare_scorers`` moves the scorers' imports to setup: afterwards a reward call imports nothing."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from videor1.rewards import accuracy_reward, prepare_scorers

PREPARE
before = set(sys.modules)
value = accuracy_reward("<answer>the red cat sat</answer>", "<answer>a red cat sat down</answer>", "free-form")
assert 0 < value < 1, value
new = sorted(set(sys.modules) - before)
print("NEW:" + ",".join(new))
"""


def _new_modules(prepare: str) -> list[str]:
    # A fresh interpreter: in the test process another test may already have imported rouge_score.
    script = SCRIPT.replace("PREPARE", prepare)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("NEW:"))
    return [name for name in line.removeprefix("NEW:").split(",") if name]


def test_after_prepare_a_free_form_reward_imports_nothing():
    assert "rouge_score" in _new_modules("pass")  # unprepared: the first call imports the scorer
    assert _new_modules('prepare_scorers({"free-form", "multiple choice"})') == []


def test_without_free_form_nothing_heavy_is_imported():
    script = (
        "import sys\nfrom videor1.rewards import prepare_scorers\n"
        "prepare_scorers(['multiple choice', 'numerical', 'OCR', 'regression'])\n"
        "print('rouge_score' in sys.modules, 'nltk' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]
