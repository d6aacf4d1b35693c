"""The RL recipe's vLLM path on CPU, with a stand-in engine in place of vLLM (which needs a GPU).

The stand-in takes requests as the pinned vLLM's ``LLM.generate`` does for Qwen2/2.5-VL and Qwen3-VL
(read in vLLM's ``multimodal/parse.py`` and ``models/qwen2_vl.py`` / ``qwen2_5_vl.py``), and refuses
what vLLM would refuse or silently misread:

- embedding inputs (``enable_mm_embeds``): per modality a dict holding exactly the fields of the
  model's processor (``{image,video}_embeds``, ``{image,video}_grid_thw``, and for videos
  ``second_per_grid_ts``), with the embeddings' rows = the grids' ``t*h*w / merge**2`` tokens, the
  grids ``[items, 3]``, one ``second_per_grid_ts`` per video, the hidden size the language model (and
  Qwen3-VL's deepstack layers) expect, and as many placeholder tokens in ``prompt_token_ids``;
- frames: vLLM's Qwen2-VL data parser keeps the frames of a ``(frames, metadata)`` pair and drops the
  metadata, and its processor gets only ``mm_processor_kwargs`` (never ``video_metadata`` or
  ``do_resize``): a clip whose real fps would then be replaced by the processor's default rate is an
  error here, as it is a silent timing error in vLLM.

It samples random tokens, loads weights through the same ``inference_weights`` the real engine uses,
and records the call order of ``wake`` / ``sleep`` / ``sync_weights``. The real engine is exercised
by ``tests/gpu/test_vllm_engine.py``.
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
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        self.processor = AutoProcessor.from_pretrained(model_path)
        self.config = AutoConfig.from_pretrained(model_path)
        self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).eval()
        self.eos = list(eos_token_ids)
        self.requests: list[list[dict]] = []
        self.calls: list[str] = []
        self.asleep = False
        StandInEngine.instances.append(self)

    # --- the pinned vLLM's input contract -------------------------------------------------------
    # vLLM 0.33.0: model_executor/models/qwen2_vl.py (Qwen2VLMultiModalDataParser,
    # _create_qwen2vl_field_factory), qwen2_5_vl.py (Qwen2_5_VLMultiModalProcessor, iter_mm_grid_thw,
    # get_mrope_input_positions), qwen3_vl.py (Qwen3VLMultiModalDataParser), multimodal/parse.py
    # (DictEmbeddingItems), multimodal/inputs.py (MultiModalKwargsItems.from_hf_inputs),
    # multimodal/processing/processor.py (_apply_token_matches_with_placeholders).
    def _fields(self, kind: str) -> set[str]:
        """The keys vLLM keeps (its processor's field config); it drops any other key silently."""
        fields = {f"{kind}_embeds", f"{kind}_grid_thw"}
        if kind == "video" and self.config.model_type == "qwen2_5_vl":
            fields.add("second_per_grid_ts")  # Qwen2_5_VLMultiModalProcessor._get_mm_fields_config
        if kind == "video" and self.config.model_type.startswith("qwen3"):
            fields.add("timestamps")  # required: Qwen3VLMultiModalDataParser.embedding_fields
        return fields

    def _vllm_positions(self, ids: list[int], media: dict) -> torch.Tensor:  # [3, N]
        """vLLM 0.33's Qwen2/2.5-VL mRoPE positions of an expanded prompt, from the fields it kept:
        text advances from the largest position so far; a video's time axis is
        floor(i * second_per_grid_t * tokens_per_second) in float64, second_per_grid_t 1.0 when absent."""
        merge = self.config.vision_config.spatial_merge_size
        tps = getattr(self.config.vision_config, "tokens_per_second", 1.0)
        token = {self.config.image_token_id: "image", self.config.video_token_id: "video"}
        taken = {"image": 0, "video": 0}
        chunks, nxt, i = [], 0, 0
        while i < len(ids):
            kind = token.get(ids[i])
            if kind is None:
                chunks.append(torch.full((3, 1), nxt, dtype=torch.long))
                nxt, i = nxt + 1, i + 1
                continue
            k = taken[kind]
            taken[kind] += 1
            t, h, w = (int(x) for x in media[kind][f"{kind}_grid_thw"][k])
            factor = 1.0
            if kind == "video" and self.config.model_type == "qwen2_5_vl":
                seconds = media[kind].get("second_per_grid_ts")
                factor = (1.0 if seconds is None else float(seconds[k])) * tps
            grid = torch.from_numpy(np.indices((t, h // merge, w // merge))).long()
            if factor != 1.0:
                grid[0] = torch.from_numpy((grid[0].numpy() * factor).astype(np.int64))
            block = grid.reshape(3, -1) + nxt
            chunks.append(block)
            nxt, i = int(block.max()) + 1, i + block.shape[1]
        return torch.cat(chunks, dim=1)

    def _embedding_dict(self, row: int, kind: str, data: dict, ids: list[int]) -> None:
        if not isinstance(data, dict):
            raise TypeError(f"row {row}: {kind} is {type(data).__name__}, not an embedding dict")
        required, allowed = {f"{kind}_embeds", f"{kind}_grid_thw"}, self._fields(kind)
        if missing := required - data.keys():
            raise ValueError(f"row {row}: {kind} dict lacks {sorted(missing)}")
        if extra := data.keys() - allowed:
            raise ValueError(f"row {row}: {kind} dict has fields vLLM does not read: {sorted(extra)}")
        if kind == "video" and "second_per_grid_ts" in allowed and "second_per_grid_ts" not in data:
            raise ValueError(f"row {row}: no second_per_grid_ts: vLLM would place the video at 1 s per patch")
        embeds, grid = data[f"{kind}_embeds"], data[f"{kind}_grid_thw"]
        if not (
            torch.is_tensor(grid) and grid.ndim == 2 and grid.shape[1] == 3 and not grid.is_floating_point()
        ):
            raise ValueError(f"row {row}: {kind}_grid_thw must be an integer [items, 3] tensor")
        merge = self.config.vision_config.spatial_merge_size
        tokens = int((grid.prod(-1) // merge**2).sum())
        text = self.config.text_config.hidden_size
        hidden = text * (1 + len(getattr(self.config.vision_config, "deepstack_visual_indexes", []) or []))
        if not (torch.is_tensor(embeds) and embeds.shape == (tokens, hidden) and embeds.device.type == "cpu"):
            raise ValueError(
                f"row {row}: {kind}_embeds {tuple(embeds.shape)}, the grids give ({tokens}, {hidden})"
            )
        placeholder = self.config.image_token_id if kind == "image" else self.config.video_token_id
        if ids.count(placeholder) != tokens:
            raise ValueError(
                f"row {row}: {ids.count(placeholder)} {kind} placeholders for {tokens} embeddings"
            )
        if "second_per_grid_ts" in data:
            ts = data["second_per_grid_ts"]
            if not (torch.is_tensor(ts) and ts.shape == (grid.shape[0],)):
                raise ValueError(f"row {row}: second_per_grid_ts must be one value per video")

    def _frames(self, row: int, request: dict) -> list[int]:
        """What vLLM does with chat text + frames: metadata dropped, only mm_processor_kwargs passed."""
        media = request["multi_modal_data"]
        kwargs = {
            "text": [request["prompt"]],
            "return_tensors": "pt",
            **request.get("mm_processor_kwargs", {}),
        }
        if "video" in media:
            frames, metadata = media["video"]
            kwargs["videos"] = [torch.from_numpy(frames).permute(0, 3, 1, 2)]
            out = self.processor(**kwargs)
            if "second_per_grid_ts" in out:
                got = float(out["second_per_grid_ts"][0])
                want = self.config.vision_config.temporal_patch_size / metadata["fps"]
                if abs(got - want) > 1e-6:
                    raise ValueError(
                        f"row {row}: vLLM drops the clip's metadata (fps {metadata['fps']}): its processor "
                        f"derives second_per_grid_ts {got:.4f}, the clip's is {want:.4f}"
                    )
        else:
            out = self.processor(images=[media["image"]], **kwargs)
        return out["input_ids"][0].tolist()

    def _expand(self, row: int, ids: list[int], media: dict) -> list[int]:
        """vLLM replaces each item's single placeholder token by its grid's tokens, whatever follows it
        (an already-expanded run would be expanded again), and requires one placeholder per item."""
        merge = self.config.vision_config.spatial_merge_size
        out, taken = [], {"image": 0, "video": 0}
        token = {self.config.image_token_id: "image", self.config.video_token_id: "video"}
        for tok in ids:
            kind = token.get(tok)
            if kind is None:
                out.append(tok)
                continue
            grids = media[kind][f"{kind}_grid_thw"] if kind in media else ()
            if taken[kind] >= len(grids):
                raise ValueError(
                    f"row {row}: more {kind} placeholders than {kind}s: vLLM would expand "
                    "each item's placeholder again"
                )
            out += [tok] * (int(grids[taken[kind]].prod()) // merge**2)
            taken[kind] += 1
        for kind, data in media.items():
            if taken[kind] != len(data[f"{kind}_grid_thw"]):
                raise ValueError(
                    f"row {row}: {taken[kind]} {kind} placeholders for {len(data[f'{kind}_grid_thw'])} items"
                )
        return out

    def _prompt_ids(self, row: int, request: dict) -> list[int]:
        if "prompt_token_ids" not in request:
            return self._frames(row, request)
        if extra := request.keys() - {"prompt_token_ids", "multi_modal_data"}:
            raise ValueError(f"row {row}: a token prompt with {sorted(extra)}")
        media = request.get("multi_modal_data", {})
        ids = self._expand(row, list(request["prompt_token_ids"]), media)
        for kind, data in media.items():
            self._embedding_dict(row, kind, data, ids)
        if media:  # vLLM's positions from what it kept = training's rule on the same prompt
            from videor1.models.positions import rope_positions

            batch = {"input_ids": torch.tensor([ids])}
            for kind, data in media.items():
                batch[f"{kind}_grid_thw"] = data[f"{kind}_grid_thw"]
                if "second_per_grid_ts" in data:
                    batch["second_per_grid_ts"] = data["second_per_grid_ts"]
            ours = rope_positions(self.config, batch).position_ids[:, 0]
            if not torch.equal(self._vllm_positions(ids, media), ours):
                raise ValueError(f"row {row}: vLLM's mRoPE positions differ from training's")
        return ids

    # --- the engine -----------------------------------------------------------------------------
    def generate(self, batch, n, sampling, *, seeds=None, **_):
        if self.asleep:
            raise RuntimeError("generate on a sleeping engine")
        self.calls.append("generate")
        requests = list(batch["prompts"])
        self.requests.append(requests)
        prompt_ids = [self._prompt_ids(row, r) for row, r in enumerate(requests)]
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
            prompt_token_ids=prompt_ids,
        )

    def sleep(self) -> None:
        self.calls.append("sleep")
        self.asleep = True

    def wake(self) -> None:
        self.calls.append("wake")
        self.asleep = False

    def sync_weights(self, model) -> None:
        from videor1.models.weights import inference_weights

        self.wake()
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in inference_weights(model, dtype=torch.float32):
                params[name].copy_(tensor)
        self.calls.append("sync")


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


def test_vllm_gets_trainings_rows_and_encodings_and_sleeps_through_every_update(
    tmp_path, tiny_rl_config, stand_in
):
    from videor1.train.rl import train

    cfg = tiny_rl_config(tmp_path, "rl.engine=vllm", "rl.shuffle_unit=temporal_patch")
    final = train(cfg)
    (engine,) = stand_in.instances
    # wake before each step's rollouts, asleep through its update, weights loaded after it
    assert engine.calls == ["wake", "generate", "sleep", "wake", "sync"] * 2
    videos_seen = 0
    for requests in engine.requests:
        ordered, twins = requests[:4], requests[4:]
        ordered_videos = [r for r in ordered if "video" in r["multi_modal_data"]]
        assert len(twins) == len(ordered_videos)  # one shuffled twin per video question, in order
        for plain, twin in zip(ordered_videos, twins):
            a, b = plain["multi_modal_data"]["video"], twin["multi_modal_data"]["video"]
            assert twin["prompt_token_ids"] == plain["prompt_token_ids"]
            assert torch.equal(a["video_grid_thw"], b["video_grid_thw"])
            assert torch.equal(a["second_per_grid_ts"], b["second_per_grid_ts"])
            t = int(a["video_grid_thw"][0, 0])
            blocks_a, blocks_b = a["video_embeds"].chunk(t), b["video_embeds"].chunk(t)
            assert not torch.equal(a["video_embeds"], b["video_embeds"])
            # the twin's encodings are the ordered clip's, permuted by temporal patch
            assert sorted(x.numpy().tobytes() for x in blocks_a) == sorted(
                x.numpy().tobytes() for x in blocks_b
            )
            videos_seen += 1
    assert videos_seen > 0, "no step had a video question"
    # the engine holds the final policy: every weight equals the checkpoint's
    from transformers import AutoModelForImageTextToText

    saved = AutoModelForImageTextToText.from_pretrained(str(final), dtype=torch.float32)
    engine_params = dict(engine.model.named_parameters())
    for name, p in saved.named_parameters():
        torch.testing.assert_close(engine_params[name], p, rtol=0, atol=0, msg=name)


def _one_video_batch(tiny_model_dir, synth_dir):
    from transformers import AutoProcessor

    from videor1.data.collate import collate
    from videor1.data.media import load_media
    from videor1.data.records import load_records
    from videor1.models.adapters import get_adapter

    cfg = load_config(
        None,
        ["data.media.nframes=8", "data.media.video_min_pixels=3136", "data.media.video_max_pixels=12544"],
    )
    processor = AutoProcessor.from_pretrained(str(tiny_model_dir))
    sample = next(s for s in load_records(synth_dir / "train.json") if s.data_type == "video")
    adapter = get_adapter(tiny_model_dir)
    clip = load_media(sample, synth_dir, cfg.data.media, geometry=adapter.geometry)
    return sample, clip, adapter, processor, collate([sample], [clip], processor, adapter=adapter)


def test_the_stand_in_refuses_frames_whose_fps_vllm_would_drop(tiny_model_dir, synth_dir):
    """Chat text + frames + metadata (what the recipe sent before embedding inputs): vLLM keeps the
    frames only, so its processor times the clip at its default rate."""
    sample, clip, adapter, processor, _ = _one_video_batch(tiny_model_dir, synth_dir)
    from videor1.data.collate import prompt_texts

    (text,) = prompt_texts([sample], processor)
    frames = clip.frames.permute(0, 2, 3, 1).contiguous().numpy()
    request = {
        "prompt": text,
        "multi_modal_data": {"video": (frames, adapter.video_metadata(clip))},
        "mm_processor_kwargs": {"do_sample_frames": False},
    }
    from transformers import AutoConfig

    engine = StandInEngine.__new__(StandInEngine)  # the contract checks read only these two
    engine.processor, engine.config = processor, AutoConfig.from_pretrained(str(tiny_model_dir))
    with pytest.raises(ValueError, match="vLLM drops the clip's metadata"):
        engine._prompt_ids(0, request)


def test_embedding_requests_carry_trainings_tokens_grid_interval_and_encodings(tiny_model_dir, synth_dir):
    from transformers import AutoConfig, AutoModelForImageTextToText

    from videor1.models.vision import encode_media
    from videor1.rollout.vllm import embedding_requests

    sample, clip, adapter, processor, batch = _one_video_batch(tiny_model_dir, synth_dir)
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    with torch.no_grad():
        media = encode_media(model, batch)
    (request,) = embedding_requests(batch, media, model.config, dtype=torch.float32)
    video = request["multi_modal_data"]["video"]
    expanded = batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()
    video_token = model.config.video_token_id
    assert request["prompt_token_ids"].count(video_token) == 1  # vLLM expands the one placeholder
    assert [t for t in request["prompt_token_ids"] if t != video_token] == [
        t for t in expanded if t != video_token
    ]
    assert torch.equal(video["video_embeds"], media.videos[0])
    assert torch.equal(video["video_grid_thw"], batch["video_grid_thw"])
    assert video["second_per_grid_ts"].tolist() == pytest.approx([adapter.second_per_grid_ts(clip)])
    engine = StandInEngine.__new__(StandInEngine)
    engine.config = AutoConfig.from_pretrained(str(tiny_model_dir))
    assert engine._prompt_ids(0, request) == expanded  # the contract holds; vLLM runs training's prompt
    with pytest.raises(ValueError, match="expand each item's placeholder again"):
        engine._prompt_ids(0, {**request, "prompt_token_ids": expanded})
    no_interval = {k: v for k, v in video.items() if k != "second_per_grid_ts"}
    from videor1.models.positions import rope_positions

    trained = rope_positions(model, {**batch, "attention_mask": None, "input_ids": torch.tensor([expanded])})
    assert torch.equal(engine._vllm_positions(expanded, {"video": video}), trained.position_ids[:, 0])
    # a 2 s interval reaches vLLM's positions; without it vLLM places the clip at 1 s per patch
    slow = {**video, "second_per_grid_ts": torch.tensor([2.0])}
    slow_trained = rope_positions(
        model,
        {
            "input_ids": torch.tensor([expanded]),
            "video_grid_thw": video["video_grid_thw"],
            "second_per_grid_ts": slow["second_per_grid_ts"],
        },
    ).position_ids[:, 0]
    assert torch.equal(engine._vllm_positions(expanded, {"video": slow}), slow_trained)
    assert not torch.equal(engine._vllm_positions(expanded, {"video": no_interval}), slow_trained)
    with pytest.raises(ValueError, match="1 s per patch"):
        engine._prompt_ids(0, {**request, "multi_modal_data": {"video": no_interval}})
    short = {**request, "prompt_token_ids": request["prompt_token_ids"][:-1]}
    cut = {**video, "video_embeds": video["video_embeds"][:-1]}
    with pytest.raises(ValueError, match="the grids give"):
        engine._prompt_ids(0, {**short, "multi_modal_data": {"video": cut}})
    with pytest.raises(ValueError, match="fields vLLM does not read"):
        engine._prompt_ids(0, {**request, "multi_modal_data": {"video": {**video, "video_metadata": {}}}})


def test_a_prompt_the_engine_tokenised_differently_is_an_error_naming_the_row(tiny_model_dir, synth_dir):
    from videor1.rollout.vllm import check_prompt_tokens

    sample, _, _, _, batch = _one_video_batch(tiny_model_dir, synth_dir)
    ids = batch["input_ids"][0].tolist()
    check_prompt_tokens([ids], batch, ["clip-7"])
    with pytest.raises(RuntimeError, match=r"clip-7 \(rollout row 0\).*first difference at token 3"):
        check_prompt_tokens([ids[:3] + [ids[3] + 1] + ids[4:]], batch, ["clip-7"])
    with pytest.raises(RuntimeError, match="expanded the media placeholders differently"):
        check_prompt_tokens([ids + ids[-1:]], batch, ["clip-7"])


def test_vllm_rollouts_gather_the_vision_tower_only_and_generate_after_releasing_it(
    tmp_path, tiny_rl_config, stand_in, monkeypatch
):
    """Under FSDP2 ``full_weights`` without ``within`` holds a full bf16 copy of the policy (16.6 GB at
    7B) on top of vLLM's own share; vLLM needs only the step's ViT encodings from the policy, so the
    rollout gathers the vision tower (and the root group) and generates after releasing it
    (``tests/unit/test_distributed_gather.py`` shows what ``within`` leaves sharded)."""
    import contextlib

    import videor1.train.rl_rollout as rl_rollout
    from videor1.train.rl import train

    depth, scopes = [0], []
    real = rl_rollout.full_weights

    @contextlib.contextmanager
    def counted(model, within=None):
        scopes.append(within)
        with real(model, within=within):
            depth[0] += 1
            try:
                yield
            finally:
                depth[0] -= 1

    seen: list[int] = []
    generate = stand_in.generate

    def recording(self, *args, **kwargs):
        seen.append(depth[0])
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(rl_rollout, "full_weights", counted)
    monkeypatch.setattr(stand_in, "generate", recording)
    train(tiny_rl_config(tmp_path, "rl.engine=vllm", "train.max_steps=1"))
    assert seen and all(d == 0 for d in seen), f"vLLM generated inside full_weights: {seen}"
    assert scopes and all(type(w).__name__.endswith("VisionTransformerPretrainedModel") for w in scopes), (
        scopes
    )
