"""The docstring examples of the reward, temporal and metric modules run and pass."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "videor1.rewards.parsing",
    "videor1.rewards.accuracy",
    "videor1.rewards.format",
    "videor1.rewards.group",
    "videor1.algorithms.temporal",
    "videor1.eval.metrics",
    "videor1.tags",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0
