"""Shuffle sensitivity: how often shuffling the frames changes a family's answer.

For ``n`` freshly generated items of one family, permute the frame states with a seeded random
permutation (``unit="frame"``: single frames, as the reference's T-GRPO does; ``"temporal_patch"``:
whole frame pairs, the ViT's temporal patch), recompute the answer with the family's own
``answer`` function and count how often it differs from the truth. A family whose answer is a
property of frame order scores high; image families score 0 (one frame, nothing to shuffle).
"""

from __future__ import annotations

import numpy as np

from videor1.data.synth.families import get_family


def shuffle_sensitivity(
    family: str, n: int, seed: int, unit: str = "frame", *, size: int = 112, frames: int = 16
) -> float:
    """Fraction of ``n`` items whose answer recomputed from shuffled frames differs from the truth."""
    if unit not in ("frame", "temporal_patch"):
        raise ValueError(f"unit must be 'frame' or 'temporal_patch', got {unit!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    task_family = get_family(family)
    rng = np.random.default_rng([seed, 7])
    changed = 0
    for slot in range(n):
        item = task_family.generate(np.random.default_rng([seed, 8, slot]), slot, size=size, frames=frames)
        states = item.states
        if unit == "frame" or len(states) < 2:
            order = [int(i) for i in rng.permutation(len(states))]
        else:
            pairs = rng.permutation(len(states) // 2)
            order = [2 * int(p) + k for p in pairs for k in (0, 1)]
        shuffled = [states[i] for i in order]
        changed += task_family.answer(shuffled, item) != item.answer
    return changed / n
