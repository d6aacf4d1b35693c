"""``videor1 config --explain`` says what the code does: each RL key's help names the quantity its
implementation uses. A help text that drifts from the code (e.g. "drop groups whose rewards are all
equal" while the code judges advantages) fails here."""

from __future__ import annotations

import inspect

import pytest

from videor1.algorithms import advantages, dynamic_sampling, losses, temporal
from videor1.config import Config, RLConfig
from videor1.config_loader import explain
from videor1.rewards import group
from videor1.train import distributed, rl_advantages, rl_update, run

HELP = {key: doc for key, _, _, doc in explain(Config)}

# key, words its help must contain, where it is implemented, what that code must contain
CASES = [
    (
        "rl.dynamic_sampling",
        ["advantages are all zero"],
        rl_advantages.informative_groups,
        "advantages.values",
    ),
    (
        "rl.dynamic_sampling",
        ["advantages are all zero"],
        dynamic_sampling.informative_mask,
        "advantages.abs()",
    ),
    ("rl.temporal_mu", ["p >= mu * p_shuffled"], temporal.temporal_decision, "p >= rule.mu * p_shuffled"),
    (
        "rl.temporal_margin",
        ["p >= p_shuffled + d"],
        temporal.temporal_decision,
        "p >= p_shuffled + rule.margin",
    ),
    (
        "rl.temporal_form",
        ["before normalisation (reference)", "normalised advantages (advantage)"],
        temporal.place_bonus,
        "group_advantages(rewards + bonuses, kind=kind)",
    ),
    ("rl.correct_threshold", ["temporal and length"], group.length_bonus, "acc > correct_threshold"),
    ("rl.correct_threshold", ["temporal and length"], temporal.temporal_decision, "acc > threshold"),
    (
        "rl.shuffled_generations",
        ["None = num_generations // 2"],
        RLConfig.num_shuffled.fget,
        "num_generations // 2",
    ),
    ("rl.advantage", ["mean-centred only (Dr.GRPO)"], advantages.group_advantages, 'kind == "dr-grpo"'),
    ("rl.beta", ["k3", "0 disables the reference model"], rl_update.logprob_caches, "rl.beta > 0"),
    ("rl.clip_eps_low", ["num_iterations > 1"], rl_update.logprob_caches, "rl.num_iterations > 1"),
    ("rl.beta", ["k3"], losses.policy_loss, "k3"),
    (
        "train.collective_timeout_s",
        ["collective", "7B checkpoint write"],
        distributed.init_distributed,
        "timedelta(seconds=timeout_s)",
    ),
    ("train.collective_timeout_s", ["collective"], run.start_run, "timeout_s=t.collective_timeout_s"),
]


@pytest.mark.parametrize(("key", "words", "code", "implemented"), CASES, ids=[c[0] for c in CASES])
def test_help_matches_the_implementation(key, words, code, implemented):
    for word in words:
        assert word in HELP[key], f"{key}: help {HELP[key]!r} no longer says {word!r}"
    assert implemented in inspect.getsource(code), (
        f"{key}: {code.__qualname__} no longer does {implemented!r}"
    )
