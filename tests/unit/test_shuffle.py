"""Frame permutation for the temporal contrast: never the same clip, pairs kept whole for temporal_patch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from videor1.data.frames import shuffle_frames
from videor1.models.known import QWEN2_5_VL_GEOMETRY as QWEN25
from videor1.types import VideoClip


def make_clip(t: int) -> VideoClip:
    # frame k is filled with the value k, so content identifies the source frame
    frames = torch.arange(t, dtype=torch.uint8).view(t, 1, 1, 1).expand(t, 3, 2, 2).contiguous()
    return VideoClip(frames=frames, frame_indices=[10 * k for k in range(t)], sample_fps=1.5, duration=7.0)


@pytest.mark.parametrize("unit", ["frame", "temporal_patch"])
@pytest.mark.parametrize("t", [4, 6, 8, 16])
def test_never_identity_over_many_seeds(unit, t):
    clip = make_clip(t)
    for seed in range(200):
        shuffled, perm = shuffle_frames(clip, torch.Generator().manual_seed(seed), geometry=QWEN25, unit=unit)
        assert sorted(perm) == list(range(t))
        assert perm != list(range(t))
        assert not torch.equal(shuffled.frames, clip.frames)
        # content, source indices and the returned permutation agree
        assert shuffled.frames[:, 0, 0, 0].tolist() == perm
        assert shuffled.frame_indices == [10 * p for p in perm]
        assert (shuffled.sample_fps, shuffled.duration) == (1.5, 7.0)
        if unit == "temporal_patch":
            # each output pair is one whole source pair, in its original order
            for i in range(0, t, 2):
                assert perm[i] % 2 == 0 and perm[i + 1] == perm[i] + 1


def test_temporal_patch_with_two_pairs_is_the_swap():
    for seed in range(20):
        _, perm = shuffle_frames(
            make_clip(4), torch.Generator().manual_seed(seed), geometry=QWEN25, unit="temporal_patch"
        )
        assert perm == [2, 3, 0, 1]


def test_same_generator_state_same_permutation_and_input_untouched():
    clip = make_clip(8)
    before = clip.frames.clone()
    _, a = shuffle_frames(clip, torch.Generator().manual_seed(3), geometry=QWEN25)
    _, b = shuffle_frames(clip, torch.Generator().manual_seed(3), geometry=QWEN25)
    assert a == b
    assert torch.equal(clip.frames, before) and clip.frame_indices == [10 * k for k in range(8)]


def test_frame_unit_mixes_pairs_sometimes():
    # single-frame shuffling is not restricted to pairs: some seed splits a pair
    clip = make_clip(8)
    split = 0
    for seed in range(50):
        _, perm = shuffle_frames(clip, torch.Generator().manual_seed(seed), geometry=QWEN25, unit="frame")
        split += any(perm[i] // 2 != perm[i + 1] // 2 for i in range(0, 8, 2))
    assert split > 0


def test_rejects_unshufflable_clips():
    with pytest.raises(ValueError, match="1 frame"):
        shuffle_frames(make_clip(1), torch.Generator(), geometry=QWEN25)
    with pytest.raises(ValueError, match="even frame count >= 4"):
        shuffle_frames(make_clip(2), torch.Generator(), geometry=QWEN25, unit="temporal_patch")
    with pytest.raises(ValueError, match="unit must be"):
        shuffle_frames(make_clip(4), torch.Generator(), geometry=QWEN25, unit="pair")  # type: ignore[arg-type]


def flash_clip(t: int, pair: int) -> VideoClip:
    """Black frames except frame pair ``pair`` (what event_quarter and quarter_shortcut render)."""
    frames = torch.zeros(t, 3, 2, 2, dtype=torch.uint8)
    frames[2 * pair : 2 * pair + 2] = 255
    return VideoClip(frames=frames, frame_indices=list(range(t)), sample_fps=2.0, duration=t / 2)


@pytest.mark.parametrize("unit", ["frame", "temporal_patch"])
def test_a_flash_in_a_black_clip_always_moves(unit):
    # 1 in 8 pair permutations of 16 frames keeps the flash pair in place: the same clip again
    clip = flash_clip(16, pair=3)
    for seed in range(300):
        shuffled, perm = shuffle_frames(clip, torch.Generator().manual_seed(seed), geometry=QWEN25, unit=unit)
        assert not torch.equal(shuffled.frames, clip.frames), seed
        assert torch.equal(shuffled.frames, clip.frames[torch.tensor(perm)])


@pytest.mark.parametrize("unit", ["frame", "temporal_patch"])
def test_a_still_clip_cannot_be_shuffled(unit):
    still = VideoClip(
        frames=torch.full((8, 3, 2, 2), 7, dtype=torch.uint8),
        frame_indices=list(range(8)),
        sample_fps=2.0,
        duration=4.0,
    )
    with pytest.raises(ValueError, match="still clip"):
        shuffle_frames(still, torch.Generator(), geometry=QWEN25, unit=unit)


def test_rl_skips_and_counts_still_clips():
    from videor1.train.rl_rollout import shuffled_twins

    def question(i, clip):
        return SimpleNamespace(
            is_video=clip is not None, media=clip, sample=SimpleNamespace(source=f"x[{i}]")
        )

    still = VideoClip(
        frames=torch.zeros(8, 3, 2, 2, dtype=torch.uint8),
        frame_indices=list(range(8)),
        sample_fps=2.0,
        duration=4.0,
    )
    questions = [
        question(0, flash_clip(8, 1)),
        question(1, still),
        question(2, None),
        question(3, make_clip(8)),
    ]
    cfg = SimpleNamespace(rl=SimpleNamespace(temporal=True, shuffle_unit="temporal_patch"))
    twins, still = shuffled_twins(cfg, questions, torch.Generator().manual_seed(0), QWEN25)
    assert [t.question for t in twins] == [0, 3] and len(still) == 1 and still[0].startswith("x[1]: ")
    cfg.rl.temporal = False
    assert shuffled_twins(cfg, questions, torch.Generator(), QWEN25) == ([], [])
