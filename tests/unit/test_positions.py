"""mRoPE positions by hand for each layout (``videor1.models.positions``).

Token ids of the toy vocabulary: ``T`` text, ``S``/``E`` vision start/end (text for mRoPE), ``IMG``
image placeholder, ``V`` video placeholder, ``P`` padding. Merge size 2, so a grid (t, h, w)
occupies t * (h/2) * (w/2) placeholders. Expected rows are (time, height, width) per token.
"""

from __future__ import annotations

import pytest
import torch

from videor1.models.adapters import FamilyAdapter
from videor1.models.positions import PAD_POSITION, continuation_positions, mrope_positions
from videor1.types import VisionGeometry

T, S, E, IMG, V, P = 10, 3, 4, 1, 2, 0


def adapter(family: str = "qwen2.5-vl", tokens_per_second: float | None = 2.0) -> FamilyAdapter:
    return FamilyAdapter(
        family=family,
        model_type=family.replace("-", "_").replace(".", "_"),
        geometry=VisionGeometry(patch_size=14, merge_size=2, temporal_patch_size=2),
        image_token_id=IMG,
        video_token_id=V,
        vision_start_token_id=S,
        vision_end_token_id=E,
        tokens_per_second=tokens_per_second if family == "qwen2.5-vl" else None,
    )


def positions(ids, mask=None, family="qwen2.5-vl", tps=2.0, images=None, videos=None, seconds=None):
    return mrope_positions(
        torch.tensor(ids),
        None if mask is None else torch.tensor(mask),
        adapter(family, tps),
        image_grid_thw=None if images is None else torch.tensor(images),
        video_grid_thw=None if videos is None else torch.tensor(videos),
        second_per_grid_ts=None if seconds is None else torch.tensor(seconds, dtype=torch.float32),
    )


def test_image():
    # T S [image 1x4x4: 2x2 tokens] E T: the image starts at 2; text resumes at max (3) + 1
    out = positions([[T, S, IMG, IMG, IMG, IMG, E, T]], images=[[1, 4, 4]])
    assert out.position_ids[:, 0].tolist() == [
        [0, 1, 2, 2, 2, 2, 4, 5],
        [0, 1, 2, 2, 3, 3, 4, 5],
        [0, 1, 2, 3, 2, 3, 4, 5],
    ]
    assert out.next_position.tolist() == [6]


def test_video_time_axis_reaches_past_the_spatial_extent():
    # S [video 2x4x4, 1 s per patch, 2 tokens/s: patch times 0, 2] E
    # transformers 5.25 would put E at 1 + max(2, 2) = 3, inside the video's time range
    out = positions([[S] + [V] * 8 + [E]], videos=[[2, 4, 4]], seconds=[1.0])
    assert out.position_ids[:, 0].tolist() == [
        [0, 1, 1, 1, 1, 3, 3, 3, 3, 4],
        [0, 1, 1, 2, 2, 1, 1, 2, 2, 4],
        [0, 1, 2, 1, 2, 1, 2, 1, 2, 4],
    ]
    assert out.next_position.tolist() == [5]


def test_image_then_video():
    # S [image 1x4x4 at 1..2] E(3) S(4) [video 4x4x4 at 5, 1 s/patch: times 5, 7, 9, 11] E(12)
    # (transformers 5.25: E at 7)
    ids = [[S] + [IMG] * 4 + [E, S] + [V] * 16 + [E]]
    out = positions(ids, images=[[1, 4, 4]], videos=[[4, 4, 4]], seconds=[1.0])
    pos = out.position_ids[:, 0]
    assert pos[:, :7].tolist() == [[0, 1, 1, 1, 1, 3, 4], [0, 1, 1, 2, 2, 3, 4], [0, 1, 2, 1, 2, 3, 4]]
    assert pos[0, 7:23].tolist() == [5] * 4 + [7] * 4 + [9] * 4 + [11] * 4
    assert pos[1, 7:11].tolist() == [5, 5, 6, 6] and pos[2, 7:11].tolist() == [5, 6, 5, 6]
    assert pos[:, 23].tolist() == [12, 12, 12]
    assert out.next_position.tolist() == [13]


def test_two_videos_each_with_its_own_interval():
    # S [A: 2x2x2, 2 s/patch -> times 0, 4] E S [B: 3x2x4, 0.5 s/patch -> times 0, 1, 2] E
    ids = [[S, V, V, E, S] + [V] * 6 + [E]]
    out = positions(ids, videos=[[2, 2, 2], [3, 2, 4]], seconds=[2.0, 0.5])
    assert out.position_ids[:, 0].tolist() == [
        [0, 1, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11],
        [0, 1, 1, 6, 7, 8, 8, 8, 8, 8, 8, 11],
        [0, 1, 1, 6, 7, 8, 9, 8, 9, 8, 9, 11],
    ]
    assert out.next_position.tolist() == [12]


def test_fractional_interval_is_floored_per_patch():
    # 5 fps, 2 frames per patch: 0.4 s/patch x 2 tokens/s = 0.8 per patch -> 0, 0.8, 1.6, 2.4 ->
    # 0, 0, 1, 2 (flooring the interval first would give 0, 0, 0, 0)
    out = positions([[S] + [V] * 4 + [E]], videos=[[4, 2, 2]], seconds=[0.4])
    assert out.position_ids[0, 0].tolist() == [0, 1, 1, 2, 3, 4]
    assert out.next_position.tolist() == [5]


def test_interval_rounds_as_vllm_033_does():
    # 0.08 s/patch (float32 0.07999999821...) x 2 tokens/s: vLLM 0.33 takes factor = 0.16 - 3.6e-9 in
    # float64, so patch 25 is at floor(3.99999991) = 3; a float32 product would round 1.99999996 up to 2
    # and give 4
    out = positions([[S] + [V] * 26 + [E]], videos=[[26, 2, 2]], seconds=[0.08])
    time = out.position_ids[0, 0, 1:27]
    assert int(time[25]) - int(time[0]) == 3
    assert [int(x) - 1 for x in time[:25:5]] == [0, 0, 1, 2, 3]


def test_sixty_second_clip():
    # tiny Qwen2.5-VL: 2 tokens/s; 60 s sampled to 16 frames = 8 temporal patches of 7.5 s, grid 8x8x16
    # video starts at 3; patch i at 3 + floor(i * 7.5 * 2) = 3, 18, ..., 108; text after at 109
    # (transformers 5.25: 3 + max(8, 16) / 2 = 11)
    ids = [[T, T, S] + [V] * 256 + [E, T]]
    out = positions(ids, videos=[[8, 8, 16]], seconds=[7.5])
    time = out.position_ids[0, 0]
    assert time[3:259].unique().tolist() == [3 + 15 * i for i in range(8)]
    assert int(out.position_ids[:, 0, 3:259].max()) == 108
    assert out.position_ids[:, 0, 259].tolist() == [109, 109, 109]
    assert out.next_position.tolist() == [111]


def test_qwen_original_docstring_example():
    # fps 1, 2 frames per patch, 25 tokens/s: 50 per patch; grid t=3, 2x2 merged -> 12 tokens
    # time [0]*4 + [50]*4 + [100]*4, height 0 0 1 1, width 0 1 0 1; text from 101
    out = positions([[V] * 12 + [T, T]], tps=25, videos=[[3, 4, 4]], seconds=[2.0])
    pos = out.position_ids[:, 0]
    assert pos[0].tolist() == [0] * 4 + [50] * 4 + [100] * 4 + [101, 102]
    assert pos[1, :12].tolist() == [0, 0, 1, 1] * 3
    assert pos[2, :12].tolist() == [0, 1, 0, 1] * 3
    assert out.next_position.tolist() == [103]


def test_left_and_right_padding_leave_the_real_tokens_positions():
    row = [T, S, IMG, IMG, IMG, IMG, E, T]
    alone = positions([row], images=[[1, 4, 4]])
    out = positions(
        [[P, P] + row, row + [P, P]],
        mask=[[0, 0] + [1] * 8, [1] * 8 + [0, 0]],
        images=[[1, 4, 4], [1, 4, 4]],
    )
    assert out.position_ids[:, 0, 2:].tolist() == alone.position_ids[:, 0].tolist()
    assert out.position_ids[:, 1, :8].tolist() == alone.position_ids[:, 0].tolist()
    assert (
        out.position_ids[:, 0, :2].eq(PAD_POSITION).all()
        and out.position_ids[:, 1, 8:].eq(PAD_POSITION).all()
    )
    assert out.next_position.tolist() == [6, 6]


def test_rows_take_their_grids_in_batch_order():
    # row 0 holds the 1-patch video, row 1 the 3-patch one; a swapped order would break the runs
    out = positions(
        [[S, V, E, P, P], [S, V, V, V, E]],
        mask=[[1, 1, 1, 0, 0], [1] * 5],
        videos=[[1, 2, 2], [3, 2, 2]],
        seconds=[1.0, 1.0],
    )
    assert out.position_ids[0, 0, :3].tolist() == [0, 1, 2]
    assert out.position_ids[0, 1].tolist() == [0, 1, 3, 5, 6]
    assert out.next_position.tolist() == [3, 7]


def test_qwen2_vl_time_is_the_patch_index():
    out = positions([[S] + [V] * 3 + [E]], family="qwen2-vl", videos=[[3, 2, 2]])
    assert out.position_ids[0, 0].tolist() == [0, 1, 2, 3, 4]
    assert out.next_position.tolist() == [5]


def test_qwen3_vl_video_is_one_run_per_temporal_patch():
    # <t0> S [patch 0: 2x2 merged at 2, 2..3] E <t1> S [patch 1 at 7] E: every run starts at time 0
    ids = [[T, S, V, V, V, V, E, T, S, V, V, V, V, E]]
    out = positions(ids, family="qwen3-vl", videos=[[2, 4, 4]])
    assert out.position_ids[:, 0].tolist() == [
        [0, 1, 2, 2, 2, 2, 4, 5, 6, 7, 7, 7, 7, 9],
        [0, 1, 2, 2, 3, 3, 4, 5, 6, 7, 7, 8, 8, 9],
        [0, 1, 2, 3, 2, 3, 4, 5, 6, 7, 8, 7, 8, 9],
    ]
    assert out.next_position.tolist() == [10]


def test_continuation_positions_follow_each_row():
    cont = continuation_positions(torch.tensor([6, 111]), length=3, start=2)
    assert cont.shape == (3, 2, 3)
    assert cont[0].tolist() == [[8, 9, 10], [113, 114, 115]]
    assert cont.eq(cont[0]).all()


@pytest.mark.parametrize(
    ("ids", "kwargs", "message"),
    [
        ([[S, V, E]], {"videos": [[2, 2, 2]], "seconds": [1.0]}, "does not match its grid"),
        ([[S, V, V, V, E]], {"videos": [[2, 2, 2]], "seconds": [1.0]}, "more videos in input_ids"),
        ([[S, V, E]], {"videos": [[1, 2, 2], [1, 2, 2]], "seconds": [1.0, 1.0]}, "more rows than videos"),
        ([[S, IMG, E]], {}, "more images in input_ids"),
        ([[S, V, E]], {"videos": [[1, 2, 2]]}, "second_per_grid_ts is required"),
        ([[S, V, E]], {"videos": [[1, 2, 2]], "seconds": [1.0, 2.0]}, "2 entries for 1"),
    ],
)
def test_placeholders_and_grids_that_disagree_raise(ids, kwargs, message):
    with pytest.raises(ValueError, match=message):
        positions(ids, **kwargs)
