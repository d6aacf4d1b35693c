"""The RL recipe's vLLM path on CPU, with a stand-in engine in place of vLLM (which needs a GPU).

The stand-in does what the colocated engine does with its inputs, through transformers instead of
vLLM: it tokenises each request (chat text + the request's own frames and metadata) with the
checkpoint's processor, samples with the policy's weights as last synced, and loads weights through
the same ``inference_weights`` the real engine uses. So everything engine-agnostic is covered here:
the requests (shuffled twins carry their own permuted frames and the real fps), the prompt-token
check, seeds, the weight sync after every update, and the update on vLLM's completions. The real
engine is exercised by ``tests/gpu/test_vllm_rl.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videor1.config import load_config
from videor1.rollout.base import RolloutEngine, RolloutOutput
from videor1.types import Completion


class StandInEngine(RolloutEngine):
    instances: list[StandInEngine] = []

    def __init__(
        self,
        model_path,
        *,
        eos_token_ids,
        suppress_token_ids,
        gpu_memory_utilization,
        max_model_len,
        dtype,
        seed,
    ):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model_path)
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).eval()
        self.eos = list(eos_token_ids)
        self.requests: list[list[dict]] = []
        self.syncs = 0
        StandInEngine.instances.append(self)

    def _prompt_ids(self, request: dict) -> list[int]:
        media = request["multi_modal_data"]
        kwargs = {"text": [request["prompt"]], "do_resize": False, "return_tensors": "pt"}
        if "video" in media:
            frames, metadata = media["video"]
            kwargs.update(videos=[torch.from_numpy(frames).permute(0, 3, 1, 2)], video_metadata=[metadata])
            kwargs.update(request["mm_processor_kwargs"])
        else:
            kwargs["images"] = [media["image"]]
        return self.processor(**kwargs)["input_ids"][0].tolist()

    def generate(self, batch, n, sampling, *, seeds=None, **_):
        requests = list(batch["prompts"])
        self.requests.append(requests)
        groups = []
        for count, seed in zip(n, seeds):
            g = torch.Generator().manual_seed(int(seed))
            ids = torch.randint(0, 64, (count, sampling.max_new_tokens), generator=g).tolist()
            groups.append(
                [Completion(text="<answer>A</answer>", token_ids=row, finished=False) for row in ids]
            )
        return RolloutOutput(
            completions=groups,
            generated_tokens=sum(len(c.token_ids) for grp in groups for c in grp),
            seconds=0.0,
            prompt_token_ids=[self._prompt_ids(r) for r in requests],
        )

    def sync_weights(self, model) -> None:
        from videor1.models.weights import inference_weights

        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in inference_weights(model, dtype=torch.float32):
                params[name].copy_(tensor)
        self.syncs += 1


@pytest.fixture
def stand_in(monkeypatch):
    import videor1.rollout.vllm as vllm_module
    import videor1.train.rl as recipe

    StandInEngine.instances.clear()
    monkeypatch.setattr(vllm_module, "VLLMRolloutEngine", StandInEngine)
    monkeypatch.setattr(recipe, "_require_vllm", lambda: None)  # the stand-in needs neither vLLM nor a GPU
    return StandInEngine


def test_vllm_engine_without_vllm_or_a_gpu_is_a_config_error_before_any_work(tmp_path, tiny_rl_config):
    import importlib.util

    import torch

    from videor1.config import ConfigError
    from videor1.train.rl import train

    if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available():
        pytest.skip("vLLM and a GPU are here")
    cfg = tiny_rl_config(tmp_path / "run", "rl.engine=vllm", f"data.train_file={tmp_path / 'missing.json'}")
    with pytest.raises(ConfigError, match="rl.engine=vllm needs"):
        train(cfg)  # not the missing data file: the engine is checked first
    assert not (tmp_path / "run").exists()


def test_vllm_path_sends_shuffled_twins_their_own_frames_and_syncs_after_every_update(
    tmp_path, tiny_rl_config, stand_in
):
    from videor1.train.rl import train

    cfg = tiny_rl_config(tmp_path, "rl.engine=vllm")
    final = train(cfg)
    (engine,) = stand_in.instances
    assert engine.syncs == 2  # after each of the 2 updates
    videos_seen = 0
    for requests in engine.requests:
        ordered, twins = requests[:4], requests[4:]
        ordered_videos = [r for r in ordered if "video" in r["multi_modal_data"]]
        assert len(twins) == len(ordered_videos)  # one shuffled twin per video question, in order
        for plain, twin in zip(ordered_videos, twins):
            (a, meta_a), (b, meta_b) = plain["multi_modal_data"]["video"], twin["multi_modal_data"]["video"]
            assert twin["prompt"] == plain["prompt"]
            assert a.shape == b.shape and not np.array_equal(a, b)
            assert sorted(map(bytes, a)) == sorted(map(bytes, b))  # the same frames, reordered
            assert meta_a["fps"] == meta_b["fps"] > 0 and meta_a["total_num_frames"] == a.shape[0]
            videos_seen += 1
    assert videos_seen > 0, "no step had a video question"
    # the engine holds the final policy: every weight equals the checkpoint's
    from transformers import AutoModelForImageTextToText

    saved = AutoModelForImageTextToText.from_pretrained(str(final), dtype=torch.float32)
    engine_params = dict(engine.model.named_parameters())
    for name, p in saved.named_parameters():
        torch.testing.assert_close(engine_params[name], p, rtol=0, atol=0, msg=name)


def test_a_prompt_the_engine_tokenised_differently_is_an_error(tiny_model_dir, synth_dir):
    from transformers import AutoProcessor

    from videor1.data.collate import collate
    from videor1.data.media import load_media
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter
    from videor1.rollout.vllm import check_prompt_tokens

    cfg = load_config(
        None,
        ["data.media.nframes=8", "data.media.video_min_pixels=3136", "data.media.video_max_pixels=12544"],
    )
    processor = AutoProcessor.from_pretrained(str(tiny_model_dir))
    sample = next(s for s in load_records(synth_dir / "train.json") if s.data_type == "video")
    adapter = get_adapter(tiny_model_dir)
    clip = load_media(sample, synth_dir, cfg.data.media, geometry=adapter.geometry)
    batch = collate([sample], [clip], processor, adapter=adapter)
    ids = batch["input_ids"][0].tolist()
    check_prompt_tokens([ids], batch, [sample], pad_id=0)
    with pytest.raises(RuntimeError, match="first difference at token 3"):
        check_prompt_tokens([ids[:3] + [ids[3] + 1] + ids[4:]], batch, [sample], pad_id=0)
    with pytest.raises(RuntimeError, match="expands the media differently"):
        check_prompt_tokens([ids + ids[-1:]], batch, [sample], pad_id=0)
