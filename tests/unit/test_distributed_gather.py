"""``full_weights(model, within=...)``: under FSDP2 it gathers the root group and the blocks inside
``within`` only (the vLLM rollout's vision encodings), and leaves every other block sharded.

One process with a gloo group of world size 1: FSDP2 tracks sharded/unsharded state per block there
as on 8 GPUs, which is what this test reads.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as torch_dist


@pytest.fixture
def one_process_group(tmp_path):
    store = torch_dist.FileStore(str(tmp_path / "store"), 1)
    torch_dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    torch_dist.destroy_process_group()


def test_full_weights_within_the_vision_tower_leaves_the_language_blocks_sharded(
    one_process_group, tiny_model_dir
):
    from torch.distributed.fsdp import FSDPModule, fully_shard
    from transformers import AutoModelForImageTextToText

    from videor1.models.adapters import get_adapter
    from videor1.train.distributed import full_weights

    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    names = set(model._no_split_modules)
    for module in model.modules():
        if type(module).__name__ in names:
            fully_shard(module)
    fully_shard(model)
    vision = get_adapter(model).vision_tower(model)
    in_vision = {id(m) for m in vision.modules()}
    blocks = [m for m in model.modules() if isinstance(m, FSDPModule) and m is not model]

    def unsharded(m):
        return m._get_fsdp_state()._fsdp_param_group.is_unsharded

    with full_weights(model, within=vision):
        assert unsharded(model)  # the root group: patch embedding, merger, embeddings
        vit = [unsharded(m) for m in blocks if id(m) in in_vision]
        text = [unsharded(m) for m in blocks if id(m) not in in_vision]
        assert vit and all(vit)
        assert text and not any(text)
    assert not any(unsharded(m) for m in blocks)
    with full_weights(model):
        assert all(unsharded(m) for m in blocks)
