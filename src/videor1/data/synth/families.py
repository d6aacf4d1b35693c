"""Registry of task families: stable name -> module (see ``base.py`` for the module contract)."""

from __future__ import annotations

from types import ModuleType

from videor1.data.synth import (
    appearance_order,
    before_after,
    direction,
    event_quarter,
    event_time,
    image_color,
    image_count,
    image_position,
    motion_caption,
    ocr_reveal,
    reversal,
    transitions,
)

FAMILIES: dict[str, ModuleType] = {
    module.FAMILY: module
    for module in (
        direction,
        appearance_order,
        transitions,
        before_after,
        reversal,
        event_quarter,
        event_time,
        ocr_reveal,
        motion_caption,
        image_color,
        image_count,
        image_position,
    )
}
"""Every family, in the order items are interleaved in the generated files."""


def get_family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise ValueError(f"unknown synth family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]
