"""``--frames`` off the temporal patch is an error naming the flag and the counts to use instead.

The reference rounds a fixed frame count to the nearest multiple of the temporal patch (3 → 4, 5 → 4,
7 → 8) while the run records the count it was given.
"""

from __future__ import annotations

import json
import logging

import pytest

from videor1.cli import main
from videor1.config import ConfigError


@pytest.fixture
def checkpoint(tmp_path):
    """A directory whose config.json gives a Qwen2.5-VL vision geometry (temporal patch 2); no weights:
    the flag must be refused before any model is loaded."""
    model = tmp_path / "ckpt"
    model.mkdir()
    vision = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl", "vision_config": vision}))
    return model


@pytest.mark.parametrize(("frames", "use"), [(3, "2 or 4"), (5, "4 or 6"), (7, "6 or 8")])
def test_infer_frames_off_the_temporal_patch(checkpoint, tmp_path, frames, use):
    argv = ["--debug", "infer", "--model", str(checkpoint), "--video", str(tmp_path / "v.mp4")]
    with pytest.raises(ConfigError) as err:
        main([*argv, "--question", "q", "--frames", str(frames)])
    assert (
        str(err.value) == f"--frames {frames} is not a multiple of the temporal patch (2 frames): use {use}"
    )


def test_eval_frames_off_the_temporal_patch(checkpoint, tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text("[]")
    argv = ["--debug", "eval", "--model", str(checkpoint), "--bench", str(bench), "--frames", "5"]
    with pytest.raises(ConfigError) as err:
        main([*argv, "--out", str(tmp_path / "out")])
    assert str(err.value) == (
        f"--frames 5 is not a multiple of the temporal patch (2 frames): use 4 or 6 ({checkpoint})"
    )
    assert not (tmp_path / "out").exists()


def test_annotate_frames_off_the_temporal_patch(tmp_path):
    data = tmp_path / "d.json"
    data.write_text("[]")
    argv = ["--debug", "annotate", "--teacher", "http://127.0.0.1:9/v1", "--data", str(data)]
    with pytest.raises(ConfigError, match=r"^--frames 7 is not a multiple .*: use 6 or 8$"):
        main([*argv, "--out", str(tmp_path / "cot.json"), "--frames", "7"])


def test_data_inspect_frames_off_the_temporal_patch(tmp_path, caplog):
    data = tmp_path / "d.json"
    data.write_text("[]")
    with caplog.at_level(logging.ERROR):
        assert main(["data", "inspect", str(data), "--frames", "3"]) == 2
    assert "--frames 3 is not a multiple of the temporal patch (2 frames): use 2 or 4" in caplog.text


def test_predictor_refuses_a_configured_count_off_the_temporal_patch(tiny_model_dir):
    # data.media.nframes from a config file or override: refused once the model's geometry is known,
    # before any item is evaluated (each would fail alike)
    from videor1.config import MediaConfig
    from videor1.infer import Predictor

    with pytest.raises(ConfigError) as err:
        Predictor(tiny_model_dir, device="cpu", media=MediaConfig(nframes=9))
    assert (
        str(err.value)
        == "data.media.nframes=9 is not a multiple of the temporal patch (2 frames): use 8 or 10"
    )
