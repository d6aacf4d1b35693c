"""Every forward passes the project's mRoPE positions (``videor1.models.positions``).

The model classes' own position code (``get_rope_index`` and ``compute_3d_position_ids``, which a
forward without ``position_ids`` calls) is patched to fail for the SFT step, the RL step (rollout
prefill and decode, reference and policy log-probs) and eval/infer generation; and Qwen3-VL's
positions are compared with transformers' on a timestamped prompt, where the two rules agree.
"""

from __future__ import annotations

import json

import pytest
import torch
from test_sft import SMALL_MEDIA

from videor1.config import Config, DataConfig, MediaConfig, ModelConfig, SamplingConfig, TrainConfig

MEDIA = SMALL_MEDIA


@pytest.fixture
def model_positions_refused(monkeypatch):
    """Patches every supported family's position code to record the call and raise."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel
    from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel

    calls: list[str] = []
    for cls in (Qwen2VLModel, Qwen2_5_VLModel, Qwen3VLModel):
        for name in ("get_rope_index", "compute_3d_position_ids"):

            def refuse(*_args, _where=f"{cls.__name__}.{name}", **_kwargs):
                calls.append(_where)
                raise AssertionError(f"{_where} called: a forward let transformers compute positions")

            monkeypatch.setattr(cls, name, refuse)
    yield calls
    assert calls == []


def test_sft_step(model_positions_refused, tmp_path, tiny_model_dir, synth_dir):
    from videor1.train.sft import train

    cfg = Config(
        model=ModelConfig(path=str(tiny_model_dir)),
        data=DataConfig(train_file=str(synth_dir / "train_cot.json"), media_root=str(synth_dir), media=MEDIA),
        train=TrainConfig(
            output_dir=str(tmp_path / "sft"), per_device_batch_size=2, max_steps=1, max_seq_len=4096
        ),
    )
    train(cfg)


def test_rl_step(model_positions_refused, tmp_path, tiny_rl_config):
    """Rollout prefill and decode (transformers engine), reference and policy log-probs."""
    from videor1.train.rl import train

    cfg = tiny_rl_config(tmp_path / "rl", "train.max_steps=1", "train.per_device_batch_size=2")
    assert cfg.rl.beta > 0  # the reference forward runs
    train(cfg)


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tiny_qwen3_dir"])
def test_predictor_generate(model_positions_refused, request, synth_dir, model_fixture):
    """``Predictor.generate``: what ``videor1 infer`` and the eval runner call."""
    from videor1.infer import Predictor

    records = json.loads((synth_dir / "test.json").read_text())
    video = next(r for r in records if r["data_type"] == "video")
    predictor = Predictor(
        request.getfixturevalue(model_fixture),
        device="cpu",
        media=MediaConfig(video_min_pixels=3136, video_max_pixels=16 * 32 * 32),
        sampling=SamplingConfig(temperature=0.0, max_new_tokens=4),
    )
    out = predictor.predict(video["problem"], video=synth_dir / video["path"], options=video["options"])
    assert out.raw_text is not None


def _collated(model_dir, synth_dir, kinds):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from videor1.data.collate import collate
    from videor1.data.media import load_media
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter

    model = AutoModelForImageTextToText.from_pretrained(str(model_dir))
    processor = AutoProcessor.from_pretrained(str(model_dir))
    adapter = get_adapter(model)
    samples = load_records(synth_dir / "test.json")
    chosen = [next(s for s in samples if s.data_type == kind) for kind in kinds]
    media = [load_media(s, synth_dir, MEDIA, geometry=adapter.geometry) for s in chosen]
    return model, collate(chosen, media, processor, variant="eval", adapter=adapter)


def _transformers_positions(model, batch):
    from videor1.models.adapters import core_model
    from videor1.models.vision import mm_token_type_ids

    core = core_model(model)
    positions, _ = core.get_rope_index(
        batch["input_ids"],
        mm_token_type_ids=mm_token_type_ids(batch["input_ids"], core.config),
        image_grid_thw=batch.get("image_grid_thw"),
        video_grid_thw=batch.get("video_grid_thw"),
        second_per_grid_ts=batch.get("second_per_grid_ts"),
        attention_mask=batch["attention_mask"],
    )
    return positions


def test_qwen3_vl_positions_equal_transformers_on_timestamped_prompts(tiny_qwen3_dir, synth_dir):
    from videor1.models.positions import PAD_POSITION, rope_positions

    model, batch = _collated(tiny_qwen3_dir, synth_dir, ["video", "image"])  # left padded, 2 rows
    assert int(batch["video_grid_thw"][0, 0]) > 1  # several timestamped temporal patches
    ours = rope_positions(model, batch).position_ids
    theirs = _transformers_positions(model, batch)
    real = batch["attention_mask"].bool()
    assert not real.all()  # the shorter row is padded
    torch.testing.assert_close(ours[:, real], theirs[:, real], rtol=0, atol=0)
    assert ours[:, ~real].eq(PAD_POSITION).all()


def test_qwen25_vl_text_after_a_video_follows_its_time_axis(tiny_model_dir, synth_dir):
    """Where the rules part: transformers 5.3+ resumes text after max(h', w'), Qwen after the largest
    position, which for a video is on the time axis."""
    from videor1.models.positions import rope_positions

    model, batch = _collated(tiny_model_dir, synth_dir, ["video"])
    ours = rope_positions(model, batch)
    ids = batch["input_ids"][0]
    video = (ids == model.config.video_token_id).nonzero().squeeze(1)
    after = int(video[-1]) + 1  # <|vision_end|>
    assert int(ours.position_ids[:, 0, after].unique()) == int(ours.position_ids[:, 0, video].max()) + 1
    assert int(ours.position_ids[0, 0, video].max()) > int(ours.position_ids[1:, 0, video].max())
    theirs = _transformers_positions(model, batch)
    assert int(theirs[0, 0, after]) < int(ours.position_ids[0, 0, after])
