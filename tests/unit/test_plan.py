"""``videor1 plan`` for the shipped 7B T-GRPO config on 8 x 80 GiB, against a hand computation."""

from __future__ import annotations

from pathlib import Path

import pytest

from videor1.config import load_config
from videor1.plan import architecture, host_plan, memory_plan, peak

REPO = Path(__file__).resolve().parents[2]

# Qwen2.5-VL-7B by hand (hidden 3584, intermediate 18944, 28 layers, 28 heads of 128, 4 KV heads,
# vocab 152064, untied head; ViT depth 32, width 1280, MLP 3420, patch 14, merge 2):
EMBED = 152064 * 3584  # 544,997,376, and the LM head the same
LAYER = (
    (3584 * 3584 + 3584) + 2 * (3584 * 512 + 512) + 3584 * 3584 + 3 * 3584 * 18944 + 2 * 3584
)  # 233,057,792
LM = 2 * EMBED + 28 * LAYER + 3584  # + final norm = 7,615,616,512
PATCH_EMBED = 3 * 2 * 14 * 14 * 1280
VIT_BLOCK = (
    2 * 1280 + (1280 * 3840 + 3840) + (1280 * 1280 + 1280) + 2 * (1280 * 3420 + 3420) + (3420 * 1280 + 1280)
)
MERGER = 1280 + (5120 * 5120 + 5120) + (5120 * 3584 + 3584)
VISION = PATCH_EMBED + 32 * VIT_BLOCK + MERGER  # 676,550,144
P = LM + VISION  # 8,292,166,656, the published count
ROOT = 2 * EMBED + 3584 + PATCH_EMBED + MERGER  # what FSDP2's root group holds


def test_architecture_of_the_7b_checkpoint_the_configs_name():
    arch = architecture(load_config(REPO / "configs/qwen2_5_vl_7b/tgrpo.yaml").model)
    assert P == 8_292_166_656 and LAYER == 233_057_792 and VISION == 676_550_144
    assert (arch.params, arch.trainable, arch.vision_params) == (P, P, VISION)
    assert (arch.root_params, arch.largest_block) == (ROOT, LAYER)
    assert arch.vision_block_params == 32 * VIT_BLOCK
    assert (arch.layers, arch.kv_heads, arch.head_dim, arch.vocab) == (28, 4, 128, 152064)


def test_tgrpo_plan_on_8_gpus_matches_the_hand_computation():
    cfg = load_config(REPO / "configs/qwen2_5_vl_7b/tgrpo.yaml")
    arch = architecture(cfg.model)
    rows = {r.name: r.bytes for r in memory_plan(cfg, arch, world_size=8, gpu_memory_gb=80)}
    # visual tokens: 16 frames, per frame max(100352, int(1.05 * 100352) = 105369) px -> 134 tokens a pair
    prompt = 8 * 134 + 256
    length = prompt + 768  # 2096
    expected = {
        "fp32 master weights": 4 * P // 8,
        "fp32 gradients": 4 * P // 8,
        "AdamW moments (fp32)": 8 * P // 8,
        "reference model (bfloat16)": 2 * P // 8,
        "full weights for generation": 2 * P,
        "KV cache": 12 * length * 28 * 2 * 4 * 128 * 2,  # (8 + 4) rows, bf16
        "gathered shards (root + 2 blocks)": 2 * (ROOT + 2 * LAYER),
        "root group's gradients (unsharded)": 2 * ROOT,  # bf16, until the reduce-scatter
        "root reduce-scatter buffer (fp32)": 4 * ROOT,
        "checkpointed layer inputs": 8 * length * 3584 * 2 * 28,
        "one layer recomputed": 8 * length * (6 * 3584 + 2 * 512 + 4 * 18944) * 2,
        "LM head, one chunk": 1024 * 152064 * 8,  # fp32 logits + softmax of 1,024 tokens
        "ViT activations": 16 * (134 * 784 // 196) * 1280 * 2 * 32,
    }
    assert rows == expected
    resident = 16 * P // 8 + 2 * P // 8
    update = sum(expected[k] for k in list(expected)[6:])
    assert update > expected["full weights for generation"] + expected["KV cache"]
    total = peak(memory_plan(cfg, arch, world_size=8, gpu_memory_gb=80))
    assert total == resident + update == 37_288_612_608
    assert total / 2**30 == pytest.approx(34.73, abs=0.01)  # of 80 GB = 74.5 GiB


def test_vllm_engine_replaces_the_generation_weights_and_kv_cache_by_its_share():
    cfg = load_config(
        REPO / "configs/qwen2_5_vl_7b/tgrpo.yaml", ["rl.engine=vllm", "rl.vllm_gpu_memory_utilization=0.25"]
    )
    rows = {
        r.name: r.bytes for r in memory_plan(cfg, architecture(cfg.model), world_size=8, gpu_memory_gb=80)
    }
    assert rows["vLLM engine (weights + KV cache; asleep in the update)"] == 20 * 10**9  # 0.25 x 80 GB
    assert "KV cache" not in rows and "full weights for generation" not in rows
    # beside vLLM's share, FSDP2 gathers only what the step's encodings need: root group + ViT blocks
    assert rows["policy weights for the encodings"] == 2 * (ROOT + 32 * VIT_BLOCK)  # bf16, ~3.5 GB


def test_a_sleeping_vllm_engine_counts_in_the_rollout_phase_only_and_its_weights_in_host_ram():
    cfg = load_config(REPO / "configs/qwen2_5_vl_7b/tgrpo.yaml", ["rl.engine=vllm"])
    arch = architecture(cfg.model)
    rows = memory_plan(cfg, arch, world_size=8, gpu_memory_gb=80)
    assert not [r for r in rows if r.phase == "host"]  # host RAM is host_plan's
    (engines,) = [r for r in host_plan(cfg, arch, gpus_per_node=8) if "vLLM" in r.name]
    assert engines.bytes == 2 * arch.params * 8  # bf16 weights, the whole model in every GPU's process
    phase = {p: sum(r.bytes for r in rows if r.phase == p) for p in ("resident", "rollout", "update")}
    assert peak(rows) == phase["resident"] + max(phase["rollout"], phase["update"])  # host RAM left out


def test_unknown_model_without_config_is_a_clear_error():
    from videor1.config import ConfigError

    cfg = load_config(None, ["model.path=org/some-other-model"])
    with pytest.raises(ConfigError, match="model.path 'org/some-other-model': no config.json"):
        architecture(cfg.model)


def test_plan_command_prints_the_table(capsys):
    from videor1.cli import main

    assert main(["plan", "--config", str(REPO / "configs/qwen2_5_vl_7b/tgrpo.yaml"), "--gpus", "8"]) == 0
    out = capsys.readouterr().out
    assert "8.29B parameters" in out and "KV cache" in out and "fits in 74.5 GiB (80 GB)" in out
    # rank 0 alone holds the fp32 policy on the host while loading: 4 B x 8.29 B = 30.9 GiB = 33.2 GB
    assert "host RAM per node (8 GPUs), peak: 30.9 GiB (33.2 GB)" in out


def test_host_ram_counts_the_sleeping_vllm_engines():
    from videor1.plan import host_peak

    cfg = load_config(REPO / "configs/qwen2_5_vl_7b/tgrpo.yaml", ["rl.engine=vllm"])
    rows = host_plan(cfg, architecture(cfg.model), gpus_per_node=8)
    assert host_peak(rows) == 2 * P * 8  # bf16 weights of 8 engines, more than rank 0's 4 P load


def test_sft_plan_counts_logits_at_the_target_positions_only():
    """``target_token_loss`` asks the model for logits only where a target is predicted
    (``logits_to_keep``): the prompt and its visual tokens never reach the LM head."""
    cfg = load_config(REPO / "configs/qwen2_5_vl_7b/sft.yaml")
    rows = {
        r.name: r
        for r in memory_plan(
            cfg, architecture(cfg.model), world_size=8, gpu_memory_gb=80, rl=False, target_tokens=512
        )
    }
    per_device = cfg.train.per_device_batch_size
    assert rows["logits"].bytes == per_device * 512 * 152064 * 10


@pytest.mark.parametrize(
    ("overrides", "root_trained"),
    [
        # adapters live in the blocks; the embeddings and LM head are frozen
        (["model.lora.enabled=true", "model.freeze_vision=true"], 0),
        (["model.lora.enabled=true"], PATCH_EMBED + MERGER),  # the ViT trains in full beside the adapters
        (["model.freeze_vision=true"], ROOT - PATCH_EMBED - MERGER),
    ],
)
def test_fsdp2_root_gradients_count_the_roots_trained_parameters_only(overrides, root_trained):
    """FSDP2 holds unsharded gradients (and their fp32 reduce-scatter copy) only for parameters that
    require grad: a frozen embedding and LM head (LoRA) have none."""
    cfg = load_config(REPO / "configs/qwen2_5_vl_7b/tgrpo.yaml", overrides)
    arch = architecture(cfg.model)
    rows = {r.name: r.bytes for r in memory_plan(cfg, arch, world_size=8, gpu_memory_gb=80)}
    assert rows["root group's gradients (unsharded)"] == 2 * root_trained
    assert rows["root reduce-scatter buffer (fp32)"] == 4 * root_trained
