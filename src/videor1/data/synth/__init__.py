"""Procedural temporal-reasoning dataset: videos whose answers depend on frame order.

``generate_dataset(out_dir, train=, test=, seed=)`` writes Video-R1-schema records and media for
twelve task families (``families.FAMILIES``) and, when named, the shortcut-control family
``quarter_shortcut`` (``families.CONTROL_FAMILIES``); ``shuffle_sensitivity`` measures how often shuffling
a family's frames changes its answer. See ``dataset.py`` for the layout and chance levels.
"""

from videor1.data.synth.dataset import GENERATOR_VERSION, chance_level, generate_dataset, generate_from_config
from videor1.data.synth.families import ALL_FAMILIES, CONTROL_FAMILIES, FAMILIES
from videor1.data.synth.sensitivity import shuffle_sensitivity

__all__ = [
    "ALL_FAMILIES",
    "CONTROL_FAMILIES",
    "FAMILIES",
    "GENERATOR_VERSION",
    "chance_level",
    "generate_dataset",
    "generate_from_config",
    "shuffle_sensitivity",
]
