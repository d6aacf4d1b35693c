"""T-GRPO decision, advantages, length bonus and score_group (Video-R1's rules), with hand-derived values."""

from __future__ import annotations

import functools

import pytest
import torch

from videor1.algorithms.temporal import TemporalRule, temporal_advantages
from videor1.algorithms.temporal import temporal_decision as decide
from videor1.rewards import length_bonus
from videor1.rewards import score_group as score

REFERENCE = TemporalRule(mu=0.8, alpha=0.3, correct_threshold=0.1)  # the paper's values (config defaults)
LENGTH = dict(omega=0.2, min_length=320, max_length=512, correct_threshold=0.1)


def temporal_decision(ordered, shuffled, *, mu=0.8, alpha=0.3, correct_threshold=0.1, margin=None):
    return decide(ordered, shuffled, TemporalRule(mu, alpha, correct_threshold, margin))


score_group = functools.partial(
    score,
    mode="default",
    length_reward=True,
    omega=0.2,
    length_min=320,
    length_max=512,
    correct_threshold=0.1,
)


def advantages_of(group, *, form):
    """T-GRPO advantages of one scored group under the reference rule."""
    rewards, accuracy = torch.tensor([group.total]), torch.tensor([group.accuracy])
    return temporal_advantages(
        rewards, accuracy, [group.shuffled_accuracy], rule=REFERENCE, form=form, kind="grpo"
    )


def test_p_and_p_shuffled_zero_fires_but_gives_nothing() -> None:
    # p = 0 >= 0.8 * 0 = 0: the rule fires (as in the reference), but no rollout is above 0.1.
    d = temporal_decision([0.0] * 8, [0.0] * 4)
    assert d.bonuses == tuple([0.0] * 8)
    assert (d.p, d.p_shuffled, d.fired, d.num_correct) == (0.0, 0.0, True, 0)


def test_p_shuffled_zero_below_p_fires() -> None:
    # p = 2/8 = 0.25 >= 0.8 * 0: the two correct ordered rollouts get +0.3.
    d = temporal_decision([1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0])
    assert list(d.bonuses) == [0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert (d.p, d.p_shuffled, d.fired, d.num_correct) == (0.25, 0.0, True, 2)
    assert d.num_shuffled == 4 and len(d.bonuses) == 8


def test_p_below_mu_p_shuffled_does_not_fire() -> None:
    # p = 3/8 = 0.375 < 0.8 * 2/4 = 0.4.
    d = temporal_decision([1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0])
    assert d.bonuses == tuple([0.0] * 8)
    assert (d.p, d.p_shuffled, d.fired) == (0.375, 0.5, False)


def test_p_just_above_mu_p_shuffled_fires() -> None:
    # p = 4/8 = 0.5 >= 0.4 even though the shuffled group is as good: mu < 1 tolerates that.
    d = temporal_decision([1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0])
    assert d.fired and d.bonuses == tuple([0.3] * 4 + [0.0] * 4)


def test_tie_fires() -> None:
    # p = 0.4 and mu * p_shuffled = 0.8 * 0.5 = 0.4 exactly (halving 0.8 is exact in binary): >= fires.
    assert temporal_decision([0.4, 0.4], [0.5, 0.5]).fired


def test_continuous_rewards() -> None:
    # p = (0.05 + 0.2 + 0.9 + 0.1) / 4 = 0.3125; p_shuffled = (0.3 + 0.1) / 2 = 0.2; 0.3125 >= 0.16.
    # Bonus only where accuracy > 0.1 strictly: 0.05 and 0.1 get nothing.
    d = temporal_decision([0.05, 0.2, 0.9, 0.1], [0.3, 0.1])
    assert list(d.bonuses) == [0.0, 0.3, 0.3, 0.0]
    assert d.p == pytest.approx(0.3125) and d.p_shuffled == pytest.approx(0.2)
    assert d.num_correct == 2


def test_continuous_rewards_not_fired() -> None:
    # p = (0.2 + 0.3) / 2 = 0.25 < 0.8 * (0.9 + 0.5) / 2 = 0.56.
    assert temporal_decision([0.2, 0.3], [0.9, 0.5]).bonuses == (0.0, 0.0)


def test_parameters() -> None:
    # mu = 1.2: p = 0.5 < 1.2 * 0.5 = 0.6 -> no; mu = 1.0 -> 0.5 >= 0.5 fires with alpha 0.5, threshold 0.6.
    assert not temporal_decision([1, 0], [1, 0], mu=1.2).fired
    d = temporal_decision([1, 0.5], [0.5, 0.5], mu=1.0, alpha=0.5, correct_threshold=0.6)
    assert list(d.bonuses) == [0.5, 0.0]


def test_no_shuffled_group_never_fires() -> None:
    d = temporal_decision([1, 1], [])
    assert list(d.bonuses) == [0.0, 0.0]
    assert (d.fired, d.reason) == (False, "no shuffled rollouts")


@pytest.mark.parametrize(
    ("accuracy", "lengths", "expected"),
    [
        ([1, 1, 1, 1], [319, 320, 512, 513], [0.0, 0.2, 0.2, 0.0]),  # window [320, 512] inclusive
        ([1, 1, 0, 0], [400, 400, 400, 400], [0.2, 0.2, 0.0, 0.0]),  # exactly two correct suffice
        ([1, 0.1, 0, 0], [400, 400, 400, 400], [0.0, 0.0, 0.0, 0.0]),  # 0.1 is not > 0.1: one correct
        ([0.5, 0.11, 0, 0], [400, 400, 400, 400], [0.2, 0.2, 0.0, 0.0]),
    ],
)
def test_length_bonus(accuracy: list[float], lengths: list[int], expected: list[float]) -> None:
    assert length_bonus(accuracy, lengths, **LENGTH) == expected


def test_length_bonus_parameters_and_errors() -> None:
    assert length_bonus([1, 1], [10, 30], omega=0.5, min_length=5, max_length=20, correct_threshold=0.1) == [
        0.5,
        0.0,
    ]
    with pytest.raises(ValueError, match="2 accuracy rewards but 1 lengths"):
        length_bonus([1, 1], [10], **LENGTH)


GOOD = "<think>look</think><answer>B</answer>"
WRONG = "<think>look</think><answer>C</answer>"
MESSY = "<answer>B</answer> trailing"  # right answer, bad format
SOLUTION = "<answer>B</answer>"


def test_score_group_video_then_its_temporal_advantages() -> None:
    # Ordered accuracy [1, 0, 1, 0] -> p = 0.5; shuffled [1, 0] -> p~ = 0.5; 0.5 >= 0.4 fires.
    # Two correct -> length bonus for the correct ones inside [320, 512]: rollout 0 (400), not 2 (600).
    out = score_group(
        [GOOD, WRONG, MESSY, "nothing"],
        SOLUTION,
        "multiple choice",
        lengths=[400, 400, 600, 400],
        shuffled_completions=[GOOD, WRONG],
    )
    assert out.accuracy == [1.0, 0.0, 1.0, 0.0]
    assert out.format == [1.0, 1.0, 0.0, 0.0]
    assert out.length == [0.2, 0.0, 0.0, 0.0]
    assert out.total == pytest.approx([2.2, 1.0, 1.0, 0.0])  # acc + format + length: no bonus in rewards
    assert out.shuffled_accuracy == [1.0, 0.0]
    assert (out.parse_failures, out.shuffled_parse_failures, out.scorer_errors) == (1, 0, 0)  # "nothing"
    t = advantages_of(out, form="reference")
    assert t.bonuses.tolist() == [pytest.approx([0.3, 0.0, 0.3, 0.0])]
    (d,) = t.decisions
    assert (d.p, d.p_shuffled, d.fired) == (0.5, 0.5, True)
    # reference form = GRPO on the reference's total acc + temporal + format + length = [2.5, 1.0, 1.3, 0.0]
    reference_total = torch.tensor([[2.5, 1.0, 1.3, 0.0]])
    expected = (reference_total - reference_total.mean()) / (reference_total.std() + 1e-4)
    torch.testing.assert_close(t.values, expected)


def test_the_shuffled_group_only_decides() -> None:
    # Shuffled group all correct: p = 0.5 < 0.8 * 1. No bonus; shuffled rollouts add no components.
    out = score_group(
        [GOOD, WRONG], SOLUTION, "multiple choice", lengths=[10, 10], shuffled_completions=[GOOD, GOOD]
    )
    assert len(out.total) == 2 and out.total == [2.0, 1.0]
    t = advantages_of(out, form="advantage")
    assert t.bonuses.tolist() == [[0.0, 0.0]] and not t.decisions[0].fired


def test_images_still_clips_and_grpo_never_get_the_bonus() -> None:
    rewards, acc = torch.tensor([[2.2, 2.2]]), torch.tensor([[1.0, 1.0]])
    for rule, shuffled in ((REFERENCE, [[]]), (None, [[0.0]])):  # no shuffled group / plain GRPO
        t = temporal_advantages(rewards, acc, shuffled, rule=rule, form="advantage", kind="grpo")
        assert t.bonuses.tolist() == [[0.0, 0.0]] and t.values.tolist() == [[0.0, 0.0]]
        assert not t.decisions[0].decided and t.shift.tolist() == [0.0]


def test_score_group_without_length_reward_and_with_a_failing_scorer(monkeypatch) -> None:
    out = score_group([GOOD, GOOD], SOLUTION, "multiple choice", lengths=[400, 400], length_reward=False)
    assert out.length == [0.0, 0.0] and out.total == [2.0, 2.0]
    import videor1.rewards.accuracy as accuracy

    def broken(*args, **kwargs):
        raise RuntimeError("rouge exploded")

    monkeypatch.setattr(accuracy, "_score_default", broken)
    out = score_group([GOOD, GOOD], SOLUTION, "multiple choice", lengths=[4, 4], shuffled_completions=[GOOD])
    # scored 0 as the reference does, but counted and named instead of looking like a wrong answer
    assert out.accuracy == [0.0, 0.0] and out.scorer_errors == 3
    assert out.scorer_error == "exception: RuntimeError: rouge exploded"


def test_score_group_video_r1_mode() -> None:
    # Reference rules: "b" is wrong (case-sensitive); two <answer> blocks pass the format check.
    two_answers = "<think>x</think><answer>B</answer><answer>C</answer>"
    out = score_group(
        ["<think>x</think><answer>b</answer>", two_answers],
        SOLUTION,
        "multiple choice",
        lengths=[5, 5],
        mode="video-r1",
    )
    assert out.accuracy == [0.0, 1.0]
    assert out.format == [1.0, 1.0]


def test_score_group_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 completions but 1 lengths"):
        score_group([GOOD, GOOD], SOLUTION, "multiple choice", lengths=[4])


def test_margin_rule_does_not_fire_when_order_is_ignored() -> None:
    # The reference rule fires on p = p_shuffled (0.75 >= 0.8 * 0.75 = 0.6): a model that ignores order
    # gets the bonus. With margin 0.25 it needs p >= 0.75 + 0.25 = 1.0: 0.75 does not fire, 1.0 does.
    same = ([1, 1, 1, 0, 1, 1, 1, 0], [1, 1, 1, 0])
    assert temporal_decision(*same).fired
    assert not temporal_decision(*same, margin=0.25).fired
    d = temporal_decision([1] * 8, [1, 1, 1, 0], margin=0.25)
    assert d.fired and d.bonuses == tuple([0.3] * 8)
    # p = 4/8 = 0.5 vs p_shuffled = 0: 0.5 >= 0 + 0.25 fires; margin 0.6 does not (0.5 < 0.6)
    assert temporal_decision([1] * 4 + [0] * 4, [0] * 4, margin=0.25).fired
    assert not temporal_decision([1] * 4 + [0] * 4, [0] * 4, margin=0.6).fired


def test_advantage_shift_hand_derived() -> None:
    # group [2, 2, 1, 1] (accuracy 1,1,0,0 + format 1): mean 1.5, unbiased std sqrt(1/3) = 0.57735
    #   A without bonus = +-0.5 / (0.57735 + 1e-4) = +-0.865876
    # with +0.3 on the two correct ones -> [2.3, 2.3, 1, 1]: mean 1.65, std 1.3 / sqrt(3) = 0.750555
    #   A = +-0.65 / (0.750555 + 1e-4) = +-0.865910; |diff| = 3.4e-5 on every rollout (divided out)
    rewards = torch.tensor([[2.0, 2.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    acc = rewards - torch.tensor([[1.0], [0.0]])  # accuracy 1,1,0,0 and 1,0,0,0
    shuffled = [[0.0, 0.0], [1.0, 1.0]]  # fired (0.5 >= 0); not fired (0.25 < 0.8)

    def shift(form, kind="grpo"):
        return temporal_advantages(rewards, acc, shuffled, rule=REFERENCE, form=form, kind=kind).shift

    ref = shift("reference")
    assert ref[0].item() == pytest.approx(0.65 / (1.3 / 3**0.5 + 1e-4) - 0.5 / (1 / 3**0.5 + 1e-4), abs=1e-5)
    assert ref[1].item() == 0.0  # not fired
    # advantage form: +0.3 on 2 of 4 rollouts -> mean |diff| = 0.15
    assert shift("advantage").tolist() == pytest.approx([0.15, 0.0])
    # dr-grpo (no std division): the reference form keeps part of the bonus, 0.3 - mean 0.15 = +-0.15
    assert shift("reference", "dr-grpo").tolist() == pytest.approx([0.15, 0.0])


def test_temporal_advantages_rejects_mismatched_groups() -> None:
    with pytest.raises(ValueError, match="must describe the same questions"):
        temporal_advantages(
            torch.zeros(2, 4), torch.zeros(2, 4), [[]], rule=REFERENCE, form="advantage", kind="grpo"
        )
