"""vLLM is imported only when a vLLM engine is built: the package and the RL recipe load without it."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_recipe_and_the_vllm_module_does_not_import_vllm():
    code = (
        "import sys, videor1.cli, videor1.train.rl, videor1.train.rl_rollout, videor1.rollout.vllm; "
        "print('vllm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
