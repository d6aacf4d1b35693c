"""T-GRPO's temporal decision: reward answers that need the frames in order (Video-R1, https://arxiv.org/abs/2503.21776).

Reference algorithm (Video-R1's T-GRPO), per question on a video:

1. roll out ``G`` completions on the ordered frames and ``G/2`` on one random permutation of them;
2. ``p`` = mean accuracy reward of the ordered group, ``p̃`` = mean of the shuffled group (means of
   the possibly continuous rewards);
3. if ``p >= mu * p̃`` (``mu = 0.8``) every ordered rollout with accuracy ``> 0.1`` gets
   ``+alpha`` (``alpha = 0.3``) on its accuracy reward. Shuffled rollouts only feed this decision;
   images never get the bonus.

``temporal_decision`` is that rule as one pure function on plain lists, and
``temporal_advantages`` is the whole T-GRPO step from rewards to advantages: it takes the ordered
group's rewards (accuracy + format + length, no bonus) and both groups' accuracies, decides per
question and returns the advantages of the chosen form with what fired and by how much the bonus
moved them. Rewards (``videor1.rewards``) only return components; the bonus lives here.
Departures:

- the bonus is computed here, from accuracies, instead of being folded into the accuracy reward by
  the reward function; the reference's total is ``accuracy + bonus + format + length``;
- means are float64 (the reference uses float32 tensors). For the reference's group sizes (8 and 4,
  0/1 rewards) ``p`` is a multiple of 1/8 and ``mu * p̃`` a multiple of 0.2, and no such pair is equal
  except 0 = 0, so the decision is the same; with continuous rewards a tie at the last float bit
  could differ;
- an empty shuffled group (images, still clips, plain GRPO) never fires; the decision says why;
- an optional stricter rule (``margin``, off by default). The reference rule fires whenever
  ``p >= 0.8 * p̃``, so it also fires when the model ignores frame order altogether (then
  ``p ≈ p̃``; with ``p = p̃`` it always fires): on a question answerable from one frame, a shortcut
  earns the same bonus as reading the order. With ``margin = d`` the bonus fires only when
  ``p >= p̃ + d``, i.e. when the ordered frames did measurably better than shuffled ones.

Note (Video-R1, https://arxiv.org/abs/2503.21776): added before std-normalisation, a uniform ``+alpha``
on every correct answer of a 0/1 group is largely divided out of the advantages.
:func:`place_bonus` (below) offers both placements: ``reference`` (bonus in the reward, before
normalisation) and ``advantage`` (bonus added to the normalised advantage); its docstring derives
why the first loses the signal and what the second does instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class TemporalRule:
    """When the bonus fires and what it gives (``rl.temporal_mu``, ``temporal_alpha``, ``correct_threshold``,
    ``temporal_margin``; the reference's values are the config defaults)."""

    mu: float  # fire when p >= mu * p_shuffled
    alpha: float  # bonus added to each correct ordered rollout
    correct_threshold: float  # accuracy above which a rollout counts as correct
    margin: float | None = None  # None: the reference rule; d: fire only when p >= p_shuffled + d


@dataclass(frozen=True)
class TemporalDecision:
    """One question's decision: the bonus of each ordered rollout and what it was decided from."""

    bonuses: tuple[float, ...]  # [G] alpha for each correct ordered rollout when fired, else 0
    p: float  # mean accuracy of the ordered group
    p_shuffled: float  # mean accuracy of the shuffled group (0 when it is empty)
    fired: bool
    num_correct: int  # ordered rollouts above the correctness threshold
    num_shuffled: int  # 0: no decision was taken (an image, a still clip, or plain GRPO)
    reason: str = ""  # why no decision was taken

    @property
    def decided(self) -> bool:
        return self.num_shuffled > 0


def temporal_decision(
    ordered_acc: Sequence[float],  # [G] accuracy rewards of the ordered rollouts
    shuffled_acc: Sequence[float],  # [G_s] accuracy rewards of the shuffled rollouts (empty: no decision)
    rule: TemporalRule | None,  # None: plain GRPO (no decision)
) -> TemporalDecision:
    """The reference's T-GRPO decision for one question (``rule.margin``: the stricter rule, see above).

    >>> ref = TemporalRule(mu=0.8, alpha=0.3, correct_threshold=0.1)
    >>> decision = temporal_decision([1, 1, 0, 0], [0, 0], ref)  # p = 0.5 >= 0.8 * 0: fires
    >>> decision.bonuses, decision.p, decision.fired, decision.num_correct
    ((0.3, 0.3, 0.0, 0.0), 0.5, True, 2)
    >>> temporal_decision([1, 0, 0, 0], [1, 1], ref).bonuses  # p = 0.25 < 0.8 * 1
    (0.0, 0.0, 0.0, 0.0)
    >>> temporal_decision([1, 1], [1, 1], ref).fired  # order ignored (p = p̃ = 1): still fires
    True
    >>> strict = TemporalRule(mu=0.8, alpha=0.3, correct_threshold=0.1, margin=0.25)
    >>> temporal_decision([1, 1], [1, 1], strict).fired  # 1 < 1 + 0.25
    False
    >>> temporal_decision([1, 1], [1, 1], None).reason
    'plain GRPO'
    """
    p, p_shuffled = _mean(ordered_acc), _mean(shuffled_acc)
    threshold = rule.correct_threshold if rule is not None else 0.0
    num_correct = sum(1 for acc in ordered_acc if acc > threshold)
    none = (0.0,) * len(ordered_acc)
    if rule is None or not ordered_acc or not shuffled_acc:
        reason = (
            "plain GRPO"
            if rule is None
            else "empty ordered group"
            if not ordered_acc
            else "no shuffled rollouts"
        )
        return TemporalDecision(none, p, p_shuffled, False, num_correct, 0, reason)
    fired = p >= rule.mu * p_shuffled if rule.margin is None else p >= p_shuffled + rule.margin
    bonuses = tuple(rule.alpha if acc > threshold else 0.0 for acc in ordered_acc) if fired else none
    return TemporalDecision(bonuses, p, p_shuffled, fired, num_correct, len(shuffled_acc))


def _mean(values: Sequence[float]) -> float:
    return float(sum(values)) / len(values) if len(values) else 0.0


# --------------------------------------------------------------------------------------------------
# Where the bonus acts: before or after the group normalisation
# --------------------------------------------------------------------------------------------------


def place_bonus(
    rewards: torch.Tensor,  # [Q, G] total reward of each ordered rollout WITHOUT the temporal bonus
    bonuses: torch.Tensor,  # [Q, G] temporal bonus per rollout (alpha where fired and correct, else 0)
    *,
    form: Literal["reference", "advantage"],
    kind: Literal["grpo", "dr-grpo"],
) -> torch.Tensor:  # [Q, G] advantages
    """Group advantages with the temporal bonus applied in one of two places.

    ``reference`` (Video-R1): the bonus joins the reward before normalisation, ``A = norm(r + b)``.
    Why that loses the signal: write a rollout's reward as ``r_i = c_i + f_i`` with ``c_i`` in {0, 1}
    (accuracy) and ``f_i`` the other components. When the bonus fires every correct rollout gets
    ``alpha``, so ``r_i + b_i = (1 + alpha) c_i + f_i``. If ``f`` is constant in the group (e.g. every
    rollout well formatted) mean and standard deviation both scale by ``(1 + alpha)`` and cancel:
    ``A`` is exactly the no-bonus advantage, up to the ``1e-4`` in the denominator. With varying
    ``f`` only a re-weighting of accuracy against format remains. A question that needs the frames
    in order is thus hardly told apart from one that does not.

    ``advantage`` (ours): normalise without the bonus and add the bonus afterwards,
    ``A_i = norm(r)_i + b_i = norm(r)_i + alpha * 1[fired] * 1[c_i > threshold]``. The bonus is then
    measured in units of the group's own spread and is not centred: in a fired group each correct
    rollout is pushed up by an extra ``alpha`` (a gradient term ``alpha * grad log p`` on correct
    answers that the frame order made possible), while in a group where shuffled frames did as well
    (not fired) advantages are the plain GRPO ones. A fired group whose rollouts are all correct
    (zero spread, so zero GRPO advantage) still gets ``+alpha`` on every rollout: temporal
    grounding is rewarded even on questions the model already solves.

    >>> r = torch.tensor([[2.0, 2.0, 1.0, 1.0]])  # accuracy 1,1,0,0 + format 1 each
    >>> b = torch.tensor([[0.3, 0.3, 0.0, 0.0]])  # the decision fired
    >>> place_bonus(r, b, form="reference", kind="grpo")  # the +0.3 is divided out
    tensor([[ 0.8659,  0.8659, -0.8659, -0.8659]])
    >>> place_bonus(r, b, form="advantage", kind="grpo")
    tensor([[ 1.1659,  1.1659, -0.8659, -0.8659]])
    """
    from videor1.algorithms.advantages import group_advantages

    if rewards.shape != bonuses.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and bonuses {tuple(bonuses.shape)} must match")
    if form == "reference":
        return group_advantages(rewards + bonuses, kind=kind)
    if form == "advantage":
        return group_advantages(rewards, kind=kind) + bonuses.float()
    raise ValueError(f"unknown temporal form {form!r}; choose 'reference' or 'advantage'")


@dataclass(frozen=True)
class Advantages:
    """What the advantage phase produced for ``Q`` questions (GRPO or T-GRPO)."""

    values: torch.Tensor  # [Q, G] what the policy trains on
    bonuses: torch.Tensor  # [Q, G] the temporal bonus of each ordered rollout (0 where not fired)
    shift: torch.Tensor  # [Q] mean |A_with_bonus - A_without| of each group: how much the bonus mattered
    decisions: tuple[TemporalDecision, ...]  # [Q]

    def rows(self, keep: Sequence[int]) -> Advantages:
        """The same advantages restricted to questions ``keep``, in that order."""
        index = torch.tensor(list(keep), dtype=torch.long)
        return Advantages(
            self.values[index], self.bonuses[index], self.shift[index], tuple(self.decisions[k] for k in keep)
        )


def temporal_advantages(
    rewards: torch.Tensor,  # [Q, G] accuracy + format + length of each ordered rollout (no bonus)
    ordered_acc: torch.Tensor,  # [Q, G] accuracy rewards of the ordered rollouts
    shuffled_acc: Sequence[Sequence[float]],  # [Q][G_s] shuffled accuracies; empty: no decision (images)
    *,
    rule: TemporalRule | None,  # None: plain GRPO (no decision at all)
    form: Literal["reference", "advantage"],
    kind: Literal["grpo", "dr-grpo"],
) -> Advantages:
    """T-GRPO from rewards to advantages: decide per question, place the bonus, measure its effect.

    A question with an empty shuffled group (an image, a still clip, or ``rule=None``) never gets a
    bonus; its advantages are plain GRPO ones under both forms. ``shift`` is 0 where the bonus did not
    fire; for a fired group under ``reference`` it is small whenever the normalisation divides the
    bonus out (see :func:`place_bonus`), under ``advantage`` it is ``alpha`` times the fraction of
    correct rollouts.

    >>> rule = TemporalRule(mu=0.8, alpha=0.3, correct_threshold=0.1)
    >>> acc = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    >>> out = temporal_advantages(acc + 1, acc, [[0.0, 0.0], [1.0, 1.0]], rule=rule, form="advantage", kind="grpo")
    >>> out.values  # fired twice; the all-correct group keeps +0.3 where GRPO alone gives 0
    tensor([[ 1.1659,  1.1659, -0.8659, -0.8659],
            [ 0.3000,  0.3000,  0.3000,  0.3000]])
    >>> [round(x, 4) for x in out.shift.tolist()], [d.fired for d in out.decisions]
    ([0.15, 0.3], [True, True])
    """
    if rewards.shape != ordered_acc.shape or len(shuffled_acc) != rewards.shape[0]:
        raise ValueError(
            f"rewards {tuple(rewards.shape)}, ordered accuracies {tuple(ordered_acc.shape)} and "
            f"{len(shuffled_acc)} shuffled groups must describe the same questions"
        )
    decisions = tuple(temporal_decision(o, s, rule) for o, s in zip(ordered_acc.tolist(), shuffled_acc))
    bonuses = torch.tensor([d.bonuses for d in decisions], dtype=torch.float32).reshape(
        rewards.shape
    )  # [Q, G]
    advantages = place_bonus(rewards, bonuses, form=form, kind=kind)  # [Q, G]
    without = place_bonus(rewards, torch.zeros_like(bonuses), form=form, kind=kind)  # [Q, G]
    shift = (advantages - without).abs().mean(dim=1)  # [Q]
    return Advantages(advantages, bonuses, shift, decisions)
