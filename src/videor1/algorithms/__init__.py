"""Pure maths of GRPO-style training: advantages, losses, dynamic sampling, the T-GRPO decision rule.

Submodules are imported directly (``videor1.algorithms.temporal`` …); nothing here reads configs,
logs or touches process groups.
"""
