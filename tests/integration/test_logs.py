"""Without a terminal, training logs one line per train.log_every steps; -q silences third-party bars."""

from __future__ import annotations

import re

from test_cli_errors import _config
from test_sft import make_cfg

from videor1.cli import main


def test_file_output_gets_step_lines_and_quiet_hides_loading_bars(
    tmp_path, tiny_model_dir, synth_dir, capsys, monkeypatch
):
    from transformers.utils import logging as hf_logging

    from videor1.utils import logging as videor1_logging

    # an earlier -q in this test session silenced them process-wide: start loud
    hf_logging.enable_progress_bar()
    monkeypatch.setitem(videor1_logging._state, "quiet", False)
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    cfg = make_cfg(tmp_path / "loud", tiny_model_dir, synth_dir, max_steps=2, log_every=1)
    assert main(["sft", "--config", _config(tmp_path, cfg)]) == 0
    loud = capsys.readouterr().err
    assert "Loading weights" in loud  # transformers' bar, shown without -q

    cfg = make_cfg(tmp_path / "quiet", tiny_model_dir, synth_dir, max_steps=4, log_every=2)
    assert main(["-q", "sft", "--config", _config(tmp_path, cfg)]) == 0
    quiet = capsys.readouterr().err
    assert "Loading weights" not in quiet and "it/s]" not in quiet
    hf_logging.enable_progress_bar()
    steps = re.findall(
        r"sft step (\d)/4  loss [0-9.]+  grad_norm [0-9.]+  [0-9.]+ s/step  eta \d+:\d\d:\d\d", quiet
    )
    assert steps == ["2", "4"]
