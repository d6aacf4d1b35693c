"""A checkpoint runs outside videor1 as trained: its processor files carry the training media budget,
the README's plain-transformers snippet answers about a real clip, and infer / eval default to it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from test_sft import make_cfg

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_dir, synth_dir) -> Path:
    """A one-step SFT checkpoint trained at 56..112 px per frame (the tiny configs' budget)."""
    from videor1.train.sft import train

    out = tmp_path_factory.mktemp("ckpt-run")
    return train(make_cfg(out, tiny_model_dir, synth_dir, max_steps=1))


def test_processor_files_hold_the_training_budget(checkpoint, real_clips):
    from transformers import AutoProcessor

    from videor1.config import load_config
    from videor1.data.collate import collate
    from videor1.data.media import load_media
    from videor1.models.adapters import get_adapter
    from videor1.types import Sample

    media = load_config(checkpoint / "config.yaml").data.media
    saved = json.loads((checkpoint / "processor_config.json").read_text())
    assert saved["video_processor"]["size"] == {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}
    assert saved["image_processor"]["size"] == {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}
    assert saved["video_processor"]["do_sample_frames"] and saved["video_processor"]["fps"] == media.fps
    # the same settings where transformers 4.x and older vLLM read them
    legacy_image = json.loads((checkpoint / "preprocessor_config.json").read_text())
    legacy_video = json.loads((checkpoint / "video_preprocessor_config.json").read_text())
    assert (legacy_image["min_pixels"], legacy_image["max_pixels"]) == (56 * 56, 112 * 112)
    assert (
        legacy_video["size"] == saved["video_processor"]["size"] and legacy_video["max_pixels"] == 112 * 112
    )

    clip_path = real_clips["bigbuckbunny"]  # 1280 x 720: the library default would keep it near full size
    sample = Sample(
        problem_id=0, problem="q", data_type="video", problem_type="free-form", options=[],
        solution="<answer>x</answer>", path=f"./{clip_path.name}", source="clip",
    )  # fmt: skip
    adapter = get_adapter(checkpoint)
    clip = load_media(sample, clip_path.parent, media, geometry=adapter.geometry)
    processor = AutoProcessor.from_pretrained(str(checkpoint))
    ours = collate([sample], [clip], processor, variant="eval", adapter=adapter)

    import av

    with av.open(str(clip_path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    source = torch.stack([torch.from_numpy(decoded[i]).permute(2, 0, 1) for i in clip.frame_indices])
    metadata = {"total_num_frames": len(source), "fps": clip.sample_fps}
    text = "<|vision_start|><|video_pad|><|vision_end|>q"
    plain = AutoProcessor.from_pretrained(str(checkpoint))  # nothing of videor1 but the saved files
    theirs = plain(
        text=[text], videos=[source], video_metadata=[metadata], do_sample_frames=False, return_tensors="pt"
    )
    assert torch.equal(theirs["video_grid_thw"], ours["video_grid_thw"])
    assert theirs["pixel_values_videos"].shape == ours["pixel_values_videos"].shape
    # torchvision v2 (transformers) vs v1 (videor1, as qwen-vl-utils) bicubic rounding: within 2 of 255
    levels = (theirs["pixel_values_videos"] - ours["pixel_values_videos"]).abs().max() * 0.2686 * 255
    assert levels <= 2.01
    # left to itself (sampling the full clip at the training fps), the processor keeps the budget too
    every = torch.stack([torch.from_numpy(f).permute(2, 0, 1) for f in decoded])
    sampled = plain(
        text=[text], videos=[every], video_metadata=[{"total_num_frames": len(every), "fps": 24.0}],
        return_tensors="pt",
    )  # fmt: skip
    assert sampled["video_grid_thw"].tolist() == ours["video_grid_thw"].tolist()


def test_the_readme_snippet_answers_about_a_real_clip(checkpoint, real_clips, capsys, monkeypatch):
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    (snippet,) = [b for b in blocks if "AutoProcessor.from_pretrained(checkpoint)" in b]
    # the one videor1 import is the positions helper, and transformers never computes positions
    assert [line for line in snippet.splitlines() if "videor1" in line] == [
        "from videor1.models.positions import rope_positions"
    ]
    for name in ("get_rope_index", "compute_3d_position_ids"):
        monkeypatch.setattr(Qwen2_5_VLModel, name, lambda *a, _n=name, **k: pytest.fail(f"{_n} called"))
    code = snippet.replace('"runs/tiny/sft/checkpoints/step-00000008"', repr(str(checkpoint)))
    code = code.replace('"clip.mp4"', repr(str(real_clips["carphone_pristine"])))
    code = code.replace("max_new_tokens=64", "max_new_tokens=8")
    exec(compile(code, "README.md", "exec"), {})
    answer = capsys.readouterr().out
    assert answer.strip(), "the model printed nothing"


def test_infer_and_eval_default_to_the_checkpoint_budget(checkpoint, synth_dir, tmp_path, capsys):
    from videor1.cli import main

    clip = sorted((synth_dir / "videos").glob("*.mp4"))[0]
    argv = ["-q", "infer", "--model", str(checkpoint), "--video", str(clip), "--question", "Which way?"]
    assert main([*argv, "--options", "left", "right", "--max-new-tokens", "4"]) == 0
    printed = capsys.readouterr().out
    assert (
        "3136..12544 px per frame" in printed
        and f"training budget in {checkpoint / 'config.yaml'}" in printed
    )

    out = tmp_path / "eval"
    argv = ["-q", "eval", "--model", str(checkpoint), "--bench", str(synth_dir / "test.json"), "--limit", "2"]
    assert main([*argv, "--max-new-tokens", "4", "--out", str(out), "data.media.nframes=4"]) == 0
    printed = capsys.readouterr().out
    assert "data.media.nframes=4 over the training budget" in printed
    run = json.loads((out / "summary.json").read_text())["run"]
    assert run["media"]["video_max_pixels"] == 12544 and run["media"]["nframes"] == 4
