"""Registry of task families: stable name -> :class:`~videor1.data.synth.base.Family`."""

from __future__ import annotations

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
    quarter_shortcut,
    reversal,
    transitions,
)
from videor1.data.synth.base import Family

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        direction.FAMILY,
        appearance_order.FAMILY,
        transitions.FAMILY,
        before_after.FAMILY,
        reversal.FAMILY,
        event_quarter.FAMILY,
        event_time.FAMILY,
        ocr_reveal.FAMILY,
        motion_caption.FAMILY,
        image_color.FAMILY,
        image_count.FAMILY,
        image_position.FAMILY,
    )
}
"""The task families, in the order items are interleaved when no families are named ("all")."""

CONTROL_FAMILIES: dict[str, Family] = {quarter_shortcut.FAMILY.name: quarter_shortcut.FAMILY}
"""Shortcut-control families (a static cue gives most training answers away): generated only when
named in ``families``, never part of the default "all"."""

ALL_FAMILIES: dict[str, Family] = {**FAMILIES, **CONTROL_FAMILIES}
"""Every family that can be named."""


def get_family(name: str) -> Family:
    if name not in ALL_FAMILIES:
        raise ValueError(f"unknown synth family {name!r}; known: {', '.join(ALL_FAMILIES)}")
    return ALL_FAMILIES[name]
