"""Procedural task families: answers, balance, chain-of-thought, chance levels, shuffle sensitivity."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter

import numpy as np
import pytest

from videor1.data.synth import (
    ALL_FAMILIES,
    CONTROL_FAMILIES,
    FAMILIES,
    chance_level,
    generate_dataset,
    quarter_shortcut,
    shuffle_sensitivity,
)
from videor1.data.synth.base import Shape, pair_blocks
from videor1.data.synth.cot import build_think, select_evidence
from videor1.data.synth.dataset import _plan, _with_process
from videor1.types import DATA_TYPES, PROBLEM_TYPES

ORDER_DEPENDENT = [name for name, f in ALL_FAMILIES.items() if f.order_dependent]
STATIC = [name for name, f in FAMILIES.items() if not f.order_dependent]


def _items(name: str, n: int, frames: int = 16, size: int = 112):
    family = ALL_FAMILIES[name]
    return [family.generate(np.random.default_rng([3, s]), s, size=size, frames=frames) for s in range(n)]


def test_every_answer_type_and_both_media_appear():
    assert {f.problem_type for f in FAMILIES.values()} == set(PROBLEM_TYPES)
    assert {f.data_type for f in FAMILIES.values()} == set(DATA_TYPES)
    assert len(FAMILIES) == 12 and all(f.name == name for name, f in FAMILIES.items())


def test_a_family_declaration_is_checked_when_it_is_made():
    direction = FAMILIES["direction"]
    assert direction.order_dependent and not FAMILIES["image_color"].order_dependent  # min sensitivity > 0
    with pytest.raises(AssertionError):  # a numerical family must list its answer values
        dataclasses.replace(direction, problem_type="numerical")
    with pytest.raises(AssertionError):  # a free-form family needs its precomputed chance
        dataclasses.replace(FAMILIES["motion_caption"], chance_rouge=None)
    with pytest.raises(AssertionError):  # a cue rate for every split
        dataclasses.replace(direction, cue_rate={"train": 0.85})


@pytest.mark.parametrize("frames", [8, 16])
@pytest.mark.parametrize("name", list(ALL_FAMILIES))
def test_items_are_consistent(name, frames):
    family = ALL_FAMILIES[name]
    for item in _items(name, 24, frames=frames):
        assert len(item.states) == (frames if family.data_type == "video" else 1)
        assert family.answer(item.states, item) == item.answer  # the label is what the states show
        if family.problem_type == "multiple choice":
            letters = [o.split(". ", 1)[0] for o in item.options]
            assert letters == list("ABCD")[: len(item.options)] and item.answer in letters
            assert len({o.split(". ", 1)[1] for o in item.options}) == len(item.options)
        else:
            assert item.options == [] and item.answer in family.answer_values(frames)
        assert len(item.problem.split()) <= 14


@pytest.mark.parametrize("name", list(ALL_FAMILIES))
def test_answers_cycle_evenly_over_slots(name):
    family = ALL_FAMILIES[name]
    answers = [item.answer for item in _items(name, 48)]
    if name == "motion_caption":  # the turn cycles; colour and shape are random distractors
        answers = [a.split(" moves ")[1] for a in answers]
    counts = Counter(answers)
    if family.problem_type == "multiple choice":
        assert len(counts) == {"before_after": 2, "reversal": 2}.get(name, 4)  # every letter is used
    elif name == "motion_caption":
        assert len(counts) == 8
    else:
        assert len(counts) == len(family.answer_values(16))
    if name == "appearance_order":  # the correct letter cycles within each shape count
        items = _items(name, 48)
        for count, options in ((2, 2), (3, 4), (4, 4)):
            letters = Counter(i.answer for i in items if len(i.params["colors"]) == count)
            assert len(letters) == options and max(letters.values()) - min(letters.values()) <= 1
    else:
        assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_dataset_plan_balances_answers_within_each_family():
    tasks = _plan(list(FAMILIES), {"train": 12 * 24, "test": 12 * 8}, 5, 112, 16, "short")
    for split in ("train", "test"):
        for name, family in FAMILIES.items():
            slots = [t["slot"] for t in tasks if t["split"] == split and t["family"] == name]
            assert sorted(slots) == list(range(min(slots), min(slots) + len(slots)))  # consecutive, each once
            answers = Counter(
                family.generate(np.random.default_rng(t["seed"]), t["slot"], size=112, frames=16).answer
                for t in tasks
                if t["split"] == split and t["family"] == name
            )
            if name in ("direction", "event_quarter", "image_color", "image_position", "transitions"):
                assert max(answers.values()) - min(answers.values()) <= 1, (name, split, answers)
    assert [t["problem_id"] for t in tasks] == list(range(12 * 32))


@pytest.mark.parametrize("name", ORDER_DEPENDENT)
def test_order_dependent_families_are_shuffle_sensitive(name):
    threshold = ALL_FAMILIES[name].min_shuffle_sensitivity
    assert threshold >= 0.35
    assert shuffle_sensitivity(name, 200, seed=0) >= threshold
    assert shuffle_sensitivity(name, 200, seed=1, unit="temporal_patch", frames=16) >= threshold


@pytest.mark.parametrize("name", STATIC)
def test_image_families_ignore_frame_order(name):
    assert shuffle_sensitivity(name, 20, seed=0) == 0.0


def test_shuffle_sensitivity_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unit"):
        shuffle_sensitivity("direction", 4, 0, unit="pixel")
    with pytest.raises(ValueError, match="unknown synth family 'nope'"):
        shuffle_sensitivity("nope", 4, 0)


def best_constant_rouge(references: list[str]) -> float:
    """Highest mean ROUGE (mean of ROUGE-1/2/L F, stemming) of one constant guess over ``references``.

    ROUGE only compares tokens, so when captions differ by one-token words that are renamed
    consistently (colours, shapes), guesses sharing the first caption's first three words suffice.
    """
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)

    def rouge(pred: str, ref: str) -> float:
        return float(np.mean([s.fmeasure for s in scorer.score(ref, pred).values()]))

    first = references[0].split()[:3]
    guesses = [r for r in references if r.split()[:3] == first]
    return round(float(max(np.mean([rouge(g, t) for t in references]) for g in guesses)), 4)


def test_chance_levels_hand_derived():
    assert chance_level("direction")[0] == 0.25
    assert chance_level("before_after")[0] == 0.5
    # 2, 3 or 4 shapes -> 2, 4, 4 options: (1/2 + 1/4 + 1/4) / 3
    assert chance_level("appearance_order")[0] == 0.3333
    assert chance_level("transitions", frames=16)[0] == 0.25  # counts 1..4
    assert chance_level("transitions", frames=8)[0] == 0.3333  # counts 1..3 (4 frame pairs)
    assert chance_level("ocr_reveal")[0] == round(1 / 12, 4)
    # frames=8 -> 4 s -> answers 1, 2, 3. Guess 2: MRA(2,1)=0 (rel 1), MRA(2,2)=1,
    # MRA(2,3): rel 1/3 <= 1 - theta for theta in {.50,.55,.60,.65} -> 0.4; mean (0 + 1 + 0.4) / 3
    assert chance_level("event_time", frames=8)[0] == 0.4667
    value, kind = chance_level("motion_caption")
    assert "ROUGE" in kind
    assert value == best_constant_rouge(FAMILIES["motion_caption"].answer_values(16))


def test_pair_blocks_split_evenly():
    blocks = pair_blocks(8, 3, np.random.default_rng(0))
    assert blocks[0][0] == 0 and blocks[-1][1] == 8
    assert sorted(b1 - b0 for b0, b1 in blocks) == [2, 3, 3]
    assert all(blocks[i][1] == blocks[i + 1][0] for i in range(2))
    with pytest.raises(ValueError, match="4 frame pairs into 5"):
        pair_blocks(4, 5, np.random.default_rng(0))


def test_cot_detail_keeps_first_middle_last():
    evidence = [f"e{i}." for i in range(7)]
    assert select_evidence(evidence, "short") == ["e0.", "e3.", "e6."]
    assert select_evidence(evidence, "full") == evidence
    text = build_think(evidence, "So X.", np.random.default_rng(0), "full")
    assert text.startswith("<think>") and text.endswith("So X.</think>") and "e5." in text
    with pytest.raises(ValueError, match="cot_detail"):
        select_evidence(evidence, "long")
    assert build_think(evidence, "So X.", np.random.default_rng(0), "none") == "<think></think>"


@pytest.mark.parametrize("name", list(ALL_FAMILIES))
def test_cot_states_the_answer_and_stays_short(name):
    family = ALL_FAMILIES[name]
    wordings = set()
    for item in _items(name, 16):
        rng = np.random.default_rng(0)
        text = build_think(*family.think(item, rng), rng, "short")
        assert re.fullmatch(r"<think>[^<>]+</think>", text)
        if family.problem_type == "multiple choice":
            value = item.options["ABCD".index(item.answer)].split(". ", 1)[1]
            assert value in text or f"answer {item.answer}" in text, text
        else:
            assert item.answer in text, text
        assert 6 <= len(text.split()) <= 60, text
        wordings.add(re.sub(r"\d+", "#", text))
    assert len(wordings) > 1  # templates vary


def test_process_is_placed_before_solution():
    record = {"problem_id": 1, "problem": "q", "solution": "<answer>A</answer>", "path": "./x.mp4"}
    keys = list(_with_process(record, "<think>t</think>"))
    assert keys == ["problem_id", "problem", "process", "solution", "path"]


def test_generate_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="multiple of 8"):
        generate_dataset(tmp_path, train=2, test=1, seed=0, frames=12)
    with pytest.raises(ValueError, match="unknown synth family 'spin'"):
        generate_dataset(tmp_path, train=2, test=1, seed=0, families=["direction", "spin"])
    with pytest.raises(ValueError, match="at least one item"):
        generate_dataset(tmp_path, train=0, test=0, seed=0)
    assert not (tmp_path / "train.json").exists()


def test_render_draws_solid_shapes():
    from videor1.data.synth.render import draw_frame

    frame = draw_frame(
        (Shape("square", "red", 10, 20, 30, 30), Shape("letter", "white", 60, 0, 50, 50, "T")), 112
    )
    assert frame.shape == (112, 112, 3) and frame.dtype == np.uint8
    assert tuple(frame[35, 25]) == (235, 40, 40) and tuple(frame[100, 100]) == (0, 0, 0)
    assert (frame[:50, 60:110] == 255).all(axis=-1).sum() > 100  # the letter is big and white


def _cue_accuracy(items) -> float:
    """Accuracy of a policy that reads only the shape's colour (the shortcut) and ignores frame order."""
    by_colour = {colour: quarter for quarter, colour in quarter_shortcut.CUE_COLORS.items()}
    guesses = [
        "ABCD"[quarter_shortcut.VALUES.index(by_colour[next(s for s in item.states if s)[0].color])]
        for item in items
    ]
    return float(np.mean([g == item.answer for g, item in zip(guesses, items)]))


def test_quarter_shortcut_cue_gives_training_answers_away_but_not_held_out_ones():
    family = CONTROL_FAMILIES["quarter_shortcut"]
    assert "quarter_shortcut" not in FAMILIES  # only generated when named

    def items(split: str, n: int = 400):
        return [
            family.generate(np.random.default_rng([9, s]), s, size=112, frames=16, split=split)
            for s in range(n)
        ]

    train, test = items("train"), items("test")
    # 400 draws: the binomial standard deviation is 1.8 points at 0.85 and 2.2 points at 0.25
    assert 0.79 <= _cue_accuracy(train) <= 0.91
    assert 0.17 <= _cue_accuracy(test) <= 0.33
    assert np.mean([i.params["cue"] for i in train]) == _cue_accuracy(train)
    # held out: every colour appears in every quarter (the cue is independent of the answer)
    assert {(i.answer, i.params["color"]) for i in test} == {
        (a, c) for a in "ABCD" for c in quarter_shortcut.CUE_COLORS.values()
    }
    # the cue survives shuffling (a shortcut policy scores the same on shuffled frames) ...
    rng = np.random.default_rng(0)
    shuffled = [dataclasses.replace(i, states=[i.states[k] for k in rng.permutation(16)]) for i in train]
    assert _cue_accuracy(shuffled) == _cue_accuracy(train)
    # ... while the answer itself follows the frame order
    assert np.mean([family.answer(s.states, s) != s.answer for s in shuffled]) >= 0.6
    with pytest.raises(ValueError, match="unknown split 'val'"):
        family.generate(np.random.default_rng(0), 0, size=112, frames=16, split="val")
    with pytest.raises(
        ValueError, match="direction: unknown split 'val'"
    ):  # one generate API for all families
        FAMILIES["direction"].generate(np.random.default_rng(0), 0, size=112, frames=16, split="val")


def test_dataset_reports_the_shortcut_cue_per_split(tmp_path):
    generate_dataset(tmp_path, train=40, test=40, seed=0, families=["quarter_shortcut"], frames=8, jobs=1)
    meta = json.loads((tmp_path / "meta.json").read_text())["families"]["quarter_shortcut"]
    train = json.loads((tmp_path / "train.json").read_text())
    test = json.loads((tmp_path / "test.json").read_text())
    assert meta["shortcut"] is True and meta["cue_rate"] == {"train": 0.85, "test": None}
    assert meta["cue_agreement"]["train"] == np.mean([r["shortcut_cue"] for r in train]) > 0.6
    assert meta["cue_agreement"]["test"] == np.mean([r["shortcut_cue"] for r in test]) < 0.5


def test_dataset_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from videor1.data.synth import dataset

    target = tmp_path / "train.json"
    target.write_text("[]\n", encoding="utf-8")

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", disk_full)  # the rename that makes the write visible fails
    with pytest.raises(OSError, match="No space"):
        dataset._write_json(target, [{"problem": "x"}])
    assert target.read_text(encoding="utf-8") == "[]\n"  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["train.json"]  # no temporary file left
