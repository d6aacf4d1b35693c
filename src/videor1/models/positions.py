"""3-D mRoPE position ids, computed here for every forward instead of by the installed transformers.

Qwen2-VL, Qwen2.5-VL and Qwen3-VL rotate each token by three positions (time, height, width);
``position_ids`` is ``[3, B, L]``. The rule, per row, over its real tokens (``attention_mask == 1``)
in order, with ``next`` = the next free position (0 at the row's first real token):

- a text token gets ``(next, next, next)``, then ``next += 1``;
- a media item (a run of ``t * h' * w'`` placeholder tokens, ``h' = h / merge``, ``w' = w / merge``,
  temporal-patch major) gets ``(next + time(i), next + y, next + x)`` for temporal patch ``i`` and
  merged row/column ``y``/``x``; then ``next = (largest position in the item) + 1``;
- ``time(i)`` per family:

  * Qwen2-VL: ``i`` (images and videos);
  * Qwen2.5-VL: videos ``floor(i * factor)`` with ``factor = second_per_grid_t * tokens_per_second``
    taken in float64 from the float32 interval, then multiplied by each temporal patch index in
    float64, as vLLM 0.33 does (``Qwen2_5_VLForConditionalGeneration.iter_mm_grid_thw`` and
    ``get_mrope_input_positions``), so a fractional interval is floored per patch and never
    accumulates; images 0. (A float32 product ``(i * second_per_grid_t) * tokens_per_second`` rounds
    differently where ``i * factor`` falls within a float32 step of an integer, e.g. 0.08 s per patch at
    patch 25: vLLM gives 3, float32 gives 4.)
  * Qwen3-VL: 0. Its prompt writes ``<t seconds>`` text before every temporal patch, so a video of
    ``t`` temporal patches is ``t`` separate one-patch runs of ``h' * w'`` tokens, each consuming one
    patch of the next ``video_grid_thw`` row.

Padding tokens get position 1 (Qwen's original value; they are masked as keys and ignored as
queries), so left and right padding give the same positions to the real tokens. A token appended
after a row's prompt continues at ``next_position + j`` on all three axes
(:func:`continuation_positions`); ``next_position - (real tokens)`` is transformers' "rope delta".

Departure from the installed transformers (5.3 and later, 5.25 here; transformers issue 45381, PR
45400): its ``get_rope_index`` advances ``next`` by ``max(h', w')`` after each media item and so
ignores the time axis: after a Qwen2.5-VL video whose time positions reach ``next + 108``, it puts
the following text at ``next + 8`` instead of ``next + 109``. The rule above is Qwen's original one
(the Qwen2/2.5-VL release code, transformers up to 5.2, and vLLM's ``get_mrope_input_positions``),
the positions the released checkpoints were trained with and that vLLM rollouts use. For items of
one temporal patch (images; every Qwen3-VL run) the two rules agree, so Qwen3-VL positions equal
transformers'. Every forward in this package (SFT, RL policy and reference, rollout prefill and
decode, eval, infer) passes ``position_ids`` from here, so the model never computes its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import torch

from videor1.models.adapters import FamilyAdapter, get_adapter

PAD_POSITION = 1
"""Position of padding tokens (masked out, so any value works; Qwen's original code uses 1)."""


class MropePositions(NamedTuple):
    """Positions of a batch of prompts (or whole sequences) and where appended tokens continue."""

    position_ids: torch.Tensor  # [3, B, L] long
    next_position: (
        torch.Tensor
    )  # [B] long: position of the first token appended after row b's last real token


def continuation_positions(
    next_position: torch.Tensor,  # [B]
    length: int,
    start: int = 0,
) -> torch.Tensor:  # [3, B, length]
    """Positions of tokens ``start .. start + length - 1`` appended after each row's prompt."""
    offsets = torch.arange(start, start + length, device=next_position.device)  # [length]
    return (next_position[:, None] + offsets).unsqueeze(0).expand(3, -1, -1)


def rope_positions(model_or_config: Any, batch: Mapping[str, Any]) -> MropePositions:
    """:func:`mrope_positions` of a collated batch (``input_ids``, ``attention_mask``, grids,
    ``second_per_grid_ts``) for a model, its config, or its ``FamilyAdapter``."""
    adapter = model_or_config if isinstance(model_or_config, FamilyAdapter) else get_adapter(model_or_config)
    return mrope_positions(
        batch["input_ids"],
        batch.get("attention_mask"),
        adapter,
        image_grid_thw=batch.get("image_grid_thw"),
        video_grid_thw=batch.get("video_grid_thw"),
        second_per_grid_ts=batch.get("second_per_grid_ts"),
    )


def mrope_positions(
    input_ids: torch.Tensor,  # [B, L]
    attention_mask: torch.Tensor | None,  # [B, L] 1 = real token; None = no padding
    adapter: FamilyAdapter,
    *,
    image_grid_thw: torch.Tensor | None = None,  # [I, 3] (t, h, w) in patches, images in batch order
    video_grid_thw: torch.Tensor | None = None,  # [V, 3] videos in batch order
    second_per_grid_ts: torch.Tensor | None = None,  # [V] seconds per temporal patch (Qwen2.5-VL)
) -> MropePositions:
    """The module docstring's rule for every row; raises when placeholders and grids disagree."""
    device = input_ids.device
    ids = input_ids.detach().cpu()  # one device->host copy per batch
    batch_size, length = ids.shape
    real = (
        torch.ones_like(ids, dtype=torch.bool)
        if attention_mask is None
        else attention_mask.detach().cpu().bool()
    )  # [B, L]
    images = _grids(image_grid_thw, "image_grid_thw")
    videos = _grids(video_grid_thw, "video_grid_thw")
    if adapter.uses_second_per_grid_ts and videos:
        if second_per_grid_ts is None:
            raise ValueError(
                f"{adapter.family}: second_per_grid_ts is required with videos (seconds per temporal patch)"
            )
        seconds = torch.as_tensor(second_per_grid_ts, dtype=torch.float32).detach().cpu().flatten()
        if seconds.numel() != len(videos):
            raise ValueError(
                f"second_per_grid_ts has {seconds.numel()} entries for {len(videos)} video_grid_thw rows"
            )
    else:
        seconds = torch.zeros(len(videos), dtype=torch.float32)
    state = _MediaState(adapter, iter(images), iter(zip(videos, seconds)))

    position_ids = torch.full((3, batch_size, length), PAD_POSITION, dtype=torch.long)  # [3, B, L]
    next_position = torch.zeros(batch_size, dtype=torch.long)  # [B]
    for b in range(batch_size):
        cols = real[b].nonzero().squeeze(1)  # [N] real token columns, in order
        row = ids[b, cols]  # [N]
        kinds = (row == adapter.image_token_id).long() + 2 * (row == adapter.video_token_id).long()
        runs, counts = torch.unique_consecutive(kinds, return_counts=True)
        chunks: list[torch.Tensor] = []  # each [3, n]
        nxt = 0
        for kind, count in zip(runs.tolist(), counts.tolist()):
            if kind == 0:
                chunks.append(torch.arange(nxt, nxt + count).expand(3, -1))
                nxt += count
                continue
            done = 0
            while done < count:
                block = state.next_block(kind, b) + nxt  # [3, n]
                done += block.shape[1]
                if done > count:
                    raise ValueError(
                        f"row {b}: a run of {count} {_NAME[kind]} placeholder tokens does not match "
                        f"its grid ({block.shape[1]} tokens per item)"
                    )
                chunks.append(block)
                nxt = int(block.max()) + 1
        if chunks:
            position_ids[:, b, cols] = torch.cat(chunks, dim=1)
        next_position[b] = nxt
    state.check_all_used()
    return MropePositions(position_ids.to(device), next_position.to(device))


_NAME = {1: "image", 2: "video"}


def _grids(grid_thw: torch.Tensor | None, name: str) -> list[tuple[int, int, int]]:
    if grid_thw is None:
        return []
    grids = torch.as_tensor(grid_thw).detach().cpu()
    if grids.ndim != 2 or grids.shape[1] != 3:
        raise ValueError(f"{name} must be [N, 3] (t, h, w), got shape {tuple(grids.shape)}")
    return [(int(t), int(h), int(w)) for t, h, w in grids.tolist()]


class _MediaState:
    """Hands out each media item's positions (relative to its start) in batch order."""

    def __init__(
        self,
        adapter: FamilyAdapter,
        images: Iterator[tuple[int, int, int]],
        videos: Iterator[tuple[tuple[int, int, int], torch.Tensor]],
    ) -> None:
        self.adapter = adapter
        self.merge = adapter.geometry.merge_size
        self.images = images
        self.videos = videos
        self.frames_left = 0  # Qwen3-VL: temporal patches of the current video still to come
        self.frame_grid = (1, 1, 1)

    def next_block(self, kind: int, row: int) -> torch.Tensor:  # [3, t * h' * w']
        family = self.adapter.family
        if kind == 1:
            t, h, w = self._take(self.images, row, "image")
            time = torch.arange(t) if family == "qwen2-vl" else torch.zeros(t, dtype=torch.long)
            return self._grid_positions(time, h, w)
        if family == "qwen3-vl":
            if self.frames_left == 0:
                (t, h, w), _ = self._take(self.videos, row, "video")
                self.frames_left, self.frame_grid = t, (1, h, w)
            self.frames_left -= 1
            _, h, w = self.frame_grid
            return self._grid_positions(torch.zeros(1, dtype=torch.long), h, w)
        (t, h, w), second_per_grid_t = self._take(self.videos, row, "video")
        if family == "qwen2-vl":
            time = torch.arange(t)
        else:
            tokens_per_second = self.adapter.tokens_per_second
            if tokens_per_second is None:
                raise ValueError("qwen2.5-vl: the config has no vision_config.tokens_per_second")
            # vLLM 0.33's arithmetic: the float32 interval times tokens_per_second in float64, times the
            # patch index in float64, truncated (= floored, all terms >= 0)
            factor = float(second_per_grid_t) * float(tokens_per_second)
            time = (torch.arange(t, dtype=torch.float64) * factor).long()
        return self._grid_positions(time, h, w)

    def _grid_positions(self, time: torch.Tensor, h: int, w: int) -> torch.Tensor:  # [3, t * h' * w']
        t, hh, ww = time.numel(), h // self.merge, w // self.merge
        return torch.stack(
            [
                time.view(t, 1, 1).expand(t, hh, ww),
                torch.arange(hh).view(1, hh, 1).expand(t, hh, ww),
                torch.arange(ww).view(1, 1, ww).expand(t, hh, ww),
            ]
        ).reshape(3, -1)

    @staticmethod
    def _take(items: Iterator[Any], row: int, name: str) -> Any:
        item = next(items, None)
        if item is None:
            raise ValueError(f"row {row}: more {name}s in input_ids than {name}_grid_thw rows")
        return item

    def check_all_used(self) -> None:
        if self.frames_left:
            raise ValueError(f"a Qwen3-VL video has {self.frames_left} temporal patches without placeholders")
        for name, items in (("image", self.images), ("video", self.videos)):
            if next(items, None) is not None:
                raise ValueError(f"{name}_grid_thw has more rows than {name}s in input_ids")
