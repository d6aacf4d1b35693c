"""The RL recipe's phases one by one: sequences, log-probs, per-row encodings, subsets, the shuffled group,
dynamic-sampling refills. Each test fails on a planted defect named in its docstring."""

from __future__ import annotations

import pytest
import torch

from videor1.types import Completion, RewardBreakdown


@pytest.fixture
def rl_state(tmp_path, tiny_rl_config):
    """A set-up RL recipe (tiny model, procedural data); ``make(*overrides)``."""
    from videor1.train import rl

    states = []

    def make(*extra: str):
        sizes = ("train.max_steps=1", "train.per_device_batch_size=3", "rl.sampling.max_new_tokens=5")
        state = rl.setup(tiny_rl_config(tmp_path / f"run{len(states)}", *sizes, *extra))
        states.append(state)
        return state

    yield make
    for state in states:
        state.counter.remove()
        state.logger.close()


def _questions(state, kinds: str):
    """Questions of the given kinds in order, e.g. "ivi" = image, video, image."""
    from videor1.train.rl_rollout import load_questions

    pools = {
        k: iter([s for s in state.samples if s.data_type == name])
        for k, name in (("i", "image"), ("v", "video"))
    }
    return load_questions(state.cfg, [next(pools[k]) for k in kinds], geometry=state.adapter.geometry)


def test_build_sequences_joins_left_padded_prompts_and_right_padded_completions():
    """Planted defect caught: completion positions not continuing from each prompt's next position."""
    from videor1.train.rl_update import build_sequences

    prompts = {
        "input_ids": torch.tensor([[0, 0, 5, 6], [7, 8, 9, 10]]),
        "attention_mask": torch.tensor([[0, 0, 1, 1], [1] * 4]),
    }
    positions = torch.tensor([[1, 1, 0, 1], [0, 1, 2, 3]]).expand(3, -1, -1)  # [3, Q, P]
    next_position = torch.tensor([2, 4])
    completions = [[Completion("", [11, 12, 13]), Completion("", [14])], [Completion("", [15, 16])]]
    seqs = build_sequences(prompts, positions, next_position, completions, pad_id=0)
    assert seqs.question == [0, 0, 1]
    assert seqs.completion_ids.tolist() == [[11, 12, 13], [14, 0, 0], [15, 16, 0]]
    assert seqs.completion_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert seqs.input_ids.tolist() == [
        [0, 0, 5, 6, 11, 12, 13],
        [0, 0, 5, 6, 14, 0, 0],
        [7, 8, 9, 10, 15, 16, 0],
    ]
    assert seqs.attention_mask.tolist() == [
        [0, 0, 1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1, 0],
    ]
    for axis in range(3):
        assert seqs.position_ids[axis].tolist() == [
            [1, 1, 0, 1, 2, 3, 4],
            [1, 1, 0, 1, 2, 3, 4],
            [0, 1, 2, 3, 4, 5, 6],
        ]


def test_row_features_repeat_each_questions_media_for_its_rows():
    """Planted defect caught: counting image and video slots together."""
    from videor1.models.vision import MediaFeatures
    from videor1.train.rl_rollout import Question
    from videor1.train.rl_update import row_features
    from videor1.types import ImageInput, VideoClip

    image = ImageInput(pixels=torch.zeros(3, 28, 28, dtype=torch.uint8))
    video = VideoClip(
        frames=torch.zeros(2, 3, 28, 28, dtype=torch.uint8),
        frame_indices=[0, 1],
        sample_fps=2.0,
        duration=1.0,
    )
    questions = [Question(None, image), Question(None, video), Question(None, image)]
    feats = MediaFeatures(
        images=[torch.full((1, 2), 0.0), torch.full((1, 2), 2.0)], videos=[torch.full((1, 2), 1.0)]
    )
    rows = row_features(feats, questions, [0, 0, 1, 2, 2, 2])
    assert [float(t[0, 0]) for t in rows.images] == [0.0, 0.0, 2.0, 2.0, 2.0]
    assert [float(t[0, 0]) for t in rows.videos] == [1.0]


def test_sequence_logprobs_equal_a_plain_forward(rl_state):
    """Planted defect caught: completion log-probs shifted by one token (logits of the wrong position)."""
    from videor1.algorithms.losses import token_logprobs
    from videor1.models.vision import encode_media, rope_positions
    from videor1.train.rl_rollout import collate_prompts
    from videor1.train.rl_update import build_sequences, row_features, sequence_logprobs

    state = rl_state()
    questions = _questions(state, "vi")
    prompts = collate_prompts(
        state.cfg,
        state.processor,
        [q.sample for q in questions],
        [q.media for q in questions],
        state.dist.device,
        adapter=state.adapter,
    )
    completions = [
        [Completion("", [21, 22, 23, 24]), Completion("", [25, 26])],
        [Completion("", [27, 28, 29])],
    ]
    positions, next_position = rope_positions(state.policy, prompts)
    seqs = build_sequences(prompts, positions, next_position, completions, state.pad_token_id)
    model = state.policy.eval()
    with torch.no_grad():
        feats = row_features(encode_media(model, prompts), questions, seqs.question)
        logp, _ = sequence_logprobs(model, seqs, feats, temperature=0.7)
        # plain forward of each full row with its own pixels, then the log-prob of token t from position t - 1
        width = seqs.completion_ids.shape[1]
        for row, qi in enumerate(seqs.question):
            q = questions[qi]
            one = collate_prompts(
                state.cfg, state.processor, [q.sample], [q.media], state.dist.device, adapter=state.adapter
            )
            n = int(seqs.completion_mask[row].sum())
            ids = torch.cat([one["input_ids"], seqs.completion_ids[row : row + 1, :n]], dim=1)
            extra = {
                k: v for k, v in one.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")
            }
            types = one["mm_token_type_ids"]  # media placeholders of the prompt; completion tokens are text
            extra["mm_token_type_ids"] = torch.cat([types, types.new_zeros(1, n)], dim=1)
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits
            plain = token_logprobs(
                logits[:, -n - 1 : -1], seqs.completion_ids[row : row + 1, :n], temperature=0.7
            )
            torch.testing.assert_close(logp[row, :n], plain[0], atol=1e-5, rtol=1e-5)
        assert logp.shape == (3, width)


def test_subset_keeps_the_chosen_questions_rows_and_pixels(rl_state):
    """Planted defect caught: taking encodings (or pixel chunks) by question index instead of per media kind."""
    from videor1.models.vision import encode_media
    from videor1.train.rl_rollout import MicroBatch, advantages, collate_prompts, subset

    state = rl_state()
    questions = _questions(state, "ivi")
    args = (state.cfg, state.processor)
    prompts = collate_prompts(
        *args,
        [q.sample for q in questions],
        [q.media for q in questions],
        state.dist.device,
        adapter=state.adapter,
    )
    with torch.no_grad():
        feats = encode_media(state.policy, prompts)
    rewards = [RewardBreakdown([float(i), 0.0], [0.0] * 2, [0.0] * 2, [float(i), 0.0]) for i in range(3)]
    mb = MicroBatch(questions, prompts, feats, [[Completion("", [1])] * 2] * 3, [[]] * 3, rewards=rewards)
    advantages(state.cfg, mb)
    sub = subset(state, mb, [1, 2])
    alone = collate_prompts(
        *args,
        [questions[k].sample for k in (1, 2)],
        [questions[k].media for k in (1, 2)],
        state.dist.device,
        adapter=state.adapter,
    )
    for key in (
        "pixel_values",
        "image_grid_thw",
        "pixel_values_videos",
        "video_grid_thw",
        "second_per_grid_ts",
    ):
        torch.testing.assert_close(sub.prompts[key], alone[key], rtol=0, atol=0, msg=key)
    for row in range(2):
        ours = sub.prompts["input_ids"][row][sub.prompts["attention_mask"][row].bool()]
        theirs = alone["input_ids"][row][alone["attention_mask"][row].bool()]
        assert torch.equal(ours, theirs)
    assert [r.total for r in sub.rewards] == [[1.0, 0.0], [2.0, 0.0]]
    torch.testing.assert_close(sub.advantages, mb.advantages[1:])
    assert torch.equal(sub.features.images[0], feats.images[1]) and torch.equal(
        sub.features.videos[0], feats.videos[0]
    )


@pytest.mark.parametrize("unit", ["temporal_patch", "frame"])
def test_the_shuffled_group_generates_from_the_shuffled_clips_encodings(rl_state, unit, monkeypatch):
    """Planted defect caught: the shuffled twin fed the ordered encodings (upstream Video-R1's vLLM bug)."""
    from videor1.data.frames import shuffle_frames
    from videor1.models.vision import encode_media
    from videor1.train.rl_rollout import collate_prompts, rollout, step_generators

    state = rl_state(f"rl.shuffle_unit={unit}")
    questions = _questions(state, "vvi")
    seen = {}
    real = state.engine.generate

    def spy(batch, counts, sampling, *, generator, features):
        seen.update(batch=batch, counts=counts, features=features)
        return real(batch, counts, sampling, generator=generator, features=features)

    monkeypatch.setattr(state.engine, "generate", spy)
    gens = step_generators(0, 0, 0, state.dist.device)
    mb, _, _, still = rollout(state, questions, gens)
    assert still == 0
    assert seen["counts"] == [4, 4, 4, 2, 2]  # G per question, G_s per video twin
    assert [len(g) for g in mb.shuffled] == [2, 2, 0]
    ordered, twins = seen["features"].videos[:2], seen["features"].videos[2:]
    # the same draws as the recipe's: the shuffled clips, encoded from scratch
    again = step_generators(0, 0, 0, state.dist.device)
    clips = [
        shuffle_frames(q.media, again.data, geometry=state.adapter.geometry, unit=unit)[0]
        for q in questions
        if q.is_video
    ]
    fresh_batch = collate_prompts(
        state.cfg,
        state.processor,
        [q.sample for q in questions[:2]],
        clips,
        state.dist.device,
        adapter=state.adapter,
    )
    with torch.no_grad():
        fresh = encode_media(state.policy, fresh_batch).videos
    for o, t, f in zip(ordered, twins, fresh):
        assert not torch.allclose(o, t)
        torch.testing.assert_close(t, f, atol=1e-5, rtol=1e-4)


def test_dynamic_sampling_rolls_out_more_questions_and_keeps_the_informative_groups(rl_state, monkeypatch):
    """Planted defects caught: no refill round; keeping the first round's zero-variance groups."""
    from videor1.train import rl_rollout as rl

    state = rl_state(
        "rl.dynamic_sampling=true",
        "rl.max_resample_rounds=3",
        "rl.temporal=false",
        "rl.shuffled_generations=null",
    )
    rounds = []
    real_score = rl.score

    def score(cfg, mb):  # the first round's groups all tie; every later round's groups have a spread
        real_score(cfg, mb)
        rounds.append([q.sample.problem_id for q in mb.questions])
        for r in mb.rewards:
            r.total = [0.0] * len(r.total) if len(rounds) == 1 else [1.0] + [0.0] * (len(r.total) - 1)

    monkeypatch.setattr(rl, "score", score)
    micro_batches, tally = rl.collect_micro_batches(state, 0)
    assert len(rounds) == 2  # the initial round, then one refill round filled the batch
    kept = [q.sample.problem_id for mb in micro_batches for q in mb.questions]
    assert kept == rounds[1]
    assert (tally.groups, tally.zero_variance, tally.dropped) == (6, 3, 3)
    assert all(mb.advantages.abs().sum() > 0 for mb in micro_batches)


def test_dynamic_sampling_keeps_a_fired_all_correct_group_under_the_advantage_form(rl_state, monkeypatch):
    """Planted defect caught: judging groups on tied rewards, which drops the group the advantage form keeps."""
    from videor1.train import rl_rollout as rl

    def run(form: str):
        state = rl_state(
            "rl.dynamic_sampling=true",
            "rl.max_resample_rounds=1",
            f"rl.temporal_form={form}",
            "train.per_device_batch_size=1",
        )
        videos = [s for s in state.samples if s.data_type == "video"]  # every question gets a twin
        state.samples = [videos[i % len(videos)] for i in range(len(state.samples))]
        real_score = rl.score

        def score(cfg, mb):  # every ordered rollout correct and formatted alike; every shuffled one wrong
            real_score(cfg, mb)
            for r in mb.rewards:
                r.accuracy = [1.0] * len(r.accuracy)
                r.total = [2.0] * len(r.total)
                r.shuffled_accuracy = [0.0] * len(r.shuffled_accuracy)

        monkeypatch.setattr(rl, "score", score)
        micro_batches, tally = rl.collect_micro_batches(state, 0)
        return micro_batches, tally

    kept, tally = run("advantage")  # fired: A = +alpha on every rollout although the rewards tie
    assert tally.dropped == 0 and tally.zero_variance == 1 and tally.groups == 1
    torch.testing.assert_close(kept[0].advantages, torch.full((1, 4), 0.3))
    _, tally = run("reference")  # the same group's advantages are all 0: dropped, and the refill too
    assert tally.dropped == 2 and tally.groups == 2
