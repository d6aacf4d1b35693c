"""The RL recipe's phases one by one: sequences, log-probs, per-row encodings, packed batches, the shuffled group,
dynamic-sampling refills, and the pure score and advantage phases without setup. Each test fails on a planted defect named in its docstring."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from videor1.algorithms.advantages import zero_variance_groups
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
        state.run.logger.close()


def _questions(state, kinds: str):
    """Questions of the given kinds in order, e.g. "ivi" = image, video, image."""
    from videor1.train.rl_rollout import load_questions

    pools = {
        k: iter([s for s in state.run.samples if s.data_type == name])
        for k, name in (("i", "image"), ("v", "video"))
    }
    run = state.run
    return load_questions(run.cfg, [next(pools[k]) for k in kinds], geometry=run.adapter.geometry)


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
    run = state.run
    questions = _questions(state, "vi")
    prompts = collate_prompts(run, [q.sample for q in questions], [q.media for q in questions])
    completions = [
        [Completion("", [21, 22, 23, 24]), Completion("", [25, 26])],
        [Completion("", [27, 28, 29])],
    ]
    positions, next_position = rope_positions(run.policy, prompts)
    seqs = build_sequences(prompts, positions, next_position, completions, state.pad_token_id)
    model = run.policy.eval()
    with torch.no_grad():
        feats = row_features(encode_media(model, prompts), questions, seqs.question)
        logp, _ = sequence_logprobs(model, seqs, feats, temperature=0.7)
        # plain forward of each full row with its own pixels, then the log-prob of token t from position t - 1
        width = seqs.completion_ids.shape[1]
        for row, qi in enumerate(seqs.question):
            q = questions[qi]
            one = collate_prompts(run, [q.sample], [q.media])
            n = int(seqs.completion_mask[row].sum())
            ids = torch.cat([one["input_ids"], seqs.completion_ids[row : row + 1, :n]], dim=1)
            extra = {
                k: v for k, v in one.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")
            }
            full = {**extra, "input_ids": ids, "attention_mask": torch.ones_like(ids)}
            full["position_ids"] = rope_positions(model, full).position_ids  # the whole row at once
            logits = model(**full).logits
            plain = token_logprobs(
                logits[:, -n - 1 : -1], seqs.completion_ids[row : row + 1, :n], temperature=0.7
            )
            torch.testing.assert_close(logp[row, :n], plain[0], atol=1e-5, rtol=1e-5)
        assert logp.shape == (3, width)


def _batch(state, questions, rewards):
    """A trainable batch of ``questions`` with two one-token completions each and the given rewards."""
    from videor1.models.vision import encode_media
    from videor1.train.rl_advantages import advantages
    from videor1.train.rl_rollout import collate_prompts
    from videor1.train.rl_types import Rollouts, ScoredGroups

    prompts = collate_prompts(state.run, [q.sample for q in questions], [q.media for q in questions])
    with torch.no_grad():
        feats = encode_media(state.run.policy, prompts)
    n = len(questions)
    rollouts = Rollouts(
        tuple(questions), prompts, feats, ([Completion("", [1])] * 2,) * n, ([],) * n, (), 0, 0.0
    )
    return advantages(state.run.cfg.rl, ScoredGroups(rollouts, tuple(rewards)))


def test_pack_keeps_the_chosen_questions_rows_and_pixels(rl_state):
    """Planted defect caught: taking encodings (or pixel chunks) by question index instead of per media kind."""
    from videor1.train.rl_advantages import pack
    from videor1.train.rl_rollout import collate_prompts

    state = rl_state()
    questions = _questions(state, "ivi")
    rewards = [RewardBreakdown([float(i), 0.0], [0.0] * 2, [0.0] * 2, [float(i), 0.0]) for i in range(3)]
    batch = _batch(state, questions, rewards)
    sub = pack(state.run, [batch], [(0, 1), (0, 2)])
    alone = collate_prompts(
        state.run, [questions[k].sample for k in (1, 2)], [questions[k].media for k in (1, 2)]
    )
    for key in (
        "pixel_values",
        "image_grid_thw",
        "pixel_values_videos",
        "video_grid_thw",
        "second_per_grid_ts",
    ):
        torch.testing.assert_close(sub.rollouts.prompts[key], alone[key], rtol=0, atol=0, msg=key)
    for row in range(2):
        mask = sub.rollouts.prompts["attention_mask"][row].bool()
        ours = sub.rollouts.prompts["input_ids"][row][mask]
        theirs = alone["input_ids"][row][alone["attention_mask"][row].bool()]
        assert torch.equal(ours, theirs)
    assert [r.total for r in sub.rewards] == [[1.0, 0.0], [2.0, 0.0]]
    torch.testing.assert_close(sub.advantages.values, batch.advantages.values[1:])
    feats, sub_feats = batch.rollouts.features, sub.rollouts.features
    assert torch.equal(sub_feats.images[0], feats.images[1]) and torch.equal(
        sub_feats.videos[0], feats.videos[0]
    )
    assert [q.sample for q in sub.questions] == [questions[1].sample, questions[2].sample]


@pytest.mark.parametrize("unit", ["temporal_patch", "frame"])
def test_the_shuffled_group_generates_from_the_shuffled_clips_encodings(rl_state, unit, monkeypatch):
    """Planted defect caught: the shuffled twin fed the ordered encodings (upstream Video-R1's vLLM bug)."""
    from videor1.data.frames import shuffle_frames
    from videor1.models.vision import encode_media
    from videor1.train.rl import step_generators
    from videor1.train.rl_rollout import collate_prompts, rollout

    state = rl_state(f"rl.shuffle_unit={unit}")
    run = state.run
    questions = _questions(state, "vvi")
    seen = {}
    real = state.engine.generate

    def spy(batch, counts, sampling, *, generator, features):
        seen.update(batch=batch, counts=counts, features=features)
        return real(batch, counts, sampling, generator=generator, features=features)

    monkeypatch.setattr(state.engine, "generate", spy)
    rollouts = rollout(state, questions, step_generators(0, 0, 0, run.dist.device))
    assert rollouts.still_clips == ()
    assert seen["counts"] == [4, 4, 4, 2, 2]  # G per question, G_s per video twin
    assert [len(g) for g in rollouts.shuffled] == [2, 2, 0]
    ordered, twins = seen["features"].videos[:2], seen["features"].videos[2:]
    # the same draws as the recipe's: the shuffled clips, encoded from scratch
    again = step_generators(0, 0, 0, run.dist.device)
    clips = [
        shuffle_frames(q.media, again.data, geometry=run.adapter.geometry, unit=unit)[0]
        for q in questions
        if q.is_video
    ]
    with torch.no_grad():
        fresh = encode_media(
            run.policy, collate_prompts(run, [q.sample for q in questions[:2]], clips)
        ).videos
    for o, t, f in zip(ordered, twins, fresh):
        assert not torch.allclose(o, t)
        torch.testing.assert_close(t, f, atol=1e-5, rtol=1e-4)


def _scoring(monkeypatch, change):
    """Make the recipe's score phase return the real scores passed through ``change(rewards, round)``."""
    from videor1.train import rl

    real, rounds = rl.score, []

    def score(cfg, rollouts):
        scored = real(cfg, rollouts)
        rounds.append([q.sample.problem_id for q in rollouts.questions])
        return replace(scored, rewards=tuple(change(r, len(rounds)) for r in scored.rewards))

    monkeypatch.setattr(rl, "score", score)
    return rounds


def _collect(state):
    from videor1.train.rl import collect, step_generators

    collected = collect(state, 0, step_generators(0, 0, 0, state.run.dist.device))
    groups = sum(len(b.questions) for b in collected.rolled_out)
    zero = sum(
        int(zero_variance_groups(torch.tensor([r.total for r in b.rewards])).sum())
        for b in collected.rolled_out
    )
    return collected, (groups, zero, collected.dropped)


def test_dynamic_sampling_rolls_out_more_questions_and_keeps_the_informative_groups(rl_state, monkeypatch):
    """Planted defects caught: no refill round; keeping the first round's zero-variance groups."""
    state = rl_state(
        "rl.dynamic_sampling=true",
        "rl.max_resample_rounds=3",
        "rl.temporal=false",
        "rl.shuffled_generations=null",
    )

    def change(r, round):  # the first round's groups all tie; every later round's groups have a spread
        return replace(r, total=[0.0] * len(r.total) if round == 1 else [1.0] + [0.0] * (len(r.total) - 1))

    rounds = _scoring(monkeypatch, change)
    collected, tally = _collect(state)
    assert len(rounds) == 2  # the initial round, then one refill round filled the batch
    kept = [q.sample.problem_id for b in collected.batches for q in b.questions]
    assert kept == rounds[1]
    assert tally == (6, 3, 3)
    assert all(b.advantages.values.abs().sum() > 0 for b in collected.batches)


def test_dynamic_sampling_keeps_a_fired_all_correct_group_under_the_advantage_form(rl_state, monkeypatch):
    """Planted defect caught: judging groups on tied rewards, which drops the group the advantage form keeps."""

    def change(r, round):  # every ordered rollout correct and formatted alike; every shuffled one wrong
        n, s = len(r.accuracy), len(r.shuffled_accuracy)
        return replace(r, accuracy=[1.0] * n, total=[2.0] * n, shuffled_accuracy=[0.0] * s)

    def run(form: str):
        state = rl_state(
            "rl.dynamic_sampling=true",
            "rl.max_resample_rounds=1",
            f"rl.temporal_form={form}",
            "train.per_device_batch_size=1",
        )
        videos = [s for s in state.run.samples if s.data_type == "video"]  # every question gets a twin
        state.run.samples = [videos[i % len(videos)] for i in range(len(state.run.samples))]
        _scoring(monkeypatch, change)
        return _collect(state)

    collected, tally = run("advantage")  # fired: A = +alpha on every rollout although the rewards tie
    assert tally == (1, 1, 0)
    torch.testing.assert_close(collected.batches[0].advantages.values, torch.full((1, 4), 0.3))
    _, tally = run("reference")  # the same group's advantages are all 0: dropped, and the refill too
    assert tally[0] == 2 and tally[2] == 2


def test_score_and_advantages_need_no_setup():
    """The pure phases run on plain values: a fired video group and an image group, by hand.

    Video: accuracy 1, 1, 0, 0 (+ format 1 each), shuffled 0, 0: p = 0.5 >= 0.8 * 0 fires; under the
    advantage form the correct rollouts get GRPO's 0.8659 + alpha 0.3. Image: no decision.
    """
    from videor1.config import RLConfig
    from videor1.train.rl_advantages import advantages, score
    from videor1.train.rl_types import Question, Rollouts
    from videor1.types import Sample

    def sample(kind):
        return Sample(1, "q", kind, "multiple choice", ["A. x", "B. y"], "<answer>A</answer>", "./x")

    good, bad = (
        Completion("<think>t</think><answer>A</answer>", [1]),
        Completion("<think>t</think><answer>B</answer>", [1]),
    )
    rollouts = Rollouts(
        (Question(sample("video"), None), Question(sample("image"), None)),
        {},
        None,
        ([good, good, bad, bad], [good, bad, bad, bad]),
        ([bad, bad], []),
        (),
        0,
        0.0,
    )
    rl = RLConfig(temporal_form="advantage", num_generations=4, shuffled_generations=2)
    batch = advantages(rl, score(rl, rollouts))
    assert [r.total for r in batch.rewards] == [[2.0, 2.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0]]
    video, image = batch.advantages.decisions
    assert (video.fired, video.p, video.p_shuffled, video.num_shuffled) == (True, 0.5, 0.0, 2)
    assert (image.decided, image.reason) == (False, "no shuffled rollouts")
    torch.testing.assert_close(
        batch.advantages.values[0], torch.tensor([1.1659, 1.1659, -0.8659, -0.8659]), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        batch.advantages.values[1], torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-3, rtol=0
    )


def test_setup_prepares_the_scorers_of_its_data(rl_state, monkeypatch):
    """Planted defect caught: rouge-score imported inside the first step (4-6 s) instead of at setup."""
    import videor1.rewards as rewards

    seen = []
    monkeypatch.setattr(rewards, "prepare_scorers", lambda types: seen.append(set(types)))
    state = rl_state()
    assert seen == [{s.problem_type for s in state.run.samples}]


def test_chunked_head_gradients_equal_the_full_logits(rl_state):
    """The update's log-probs through the chunked head (chunks of 3 tokens, crossing rows) give the
    same loss gradient on every parameter as the model's full logits (float64, to 1e-6; in fp32 the two
    orders of summation differ by ~1e-5 in the tied embedding's gradient)."""
    from videor1.train.head import completion_logprobs

    state = rl_state()
    model = state.run.policy.double().train()
    ids = torch.tensor([[3, 4, 5, 21, 22, 23, 24], [3, 6, 7, 25, 26, 27, 0]])  # [R, P + C], C = 4
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    targets = ids[:, 3:]
    weights = torch.tensor([[1.0, -2.0, 0.5, 1.0], [0.3, 1.0, -1.0, 0.0]], dtype=torch.float64)

    def grads(logp):
        model.zero_grad()
        ((logp * weights * mask).sum()).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    logp, entropy = completion_logprobs(model, targets, 0.7, chunk=3, input_ids=ids, use_cache=False)
    chunked = grads(logp)
    logits = model(input_ids=ids, use_cache=False, logits_to_keep=5).logits[:, :-1]  # [R, C, V]
    z = logits / 0.7  # token_logprobs without its cast to fp32
    full = z.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(z, -1)
    plain = grads(full)
    torch.testing.assert_close(logp, full, atol=1e-6, rtol=0)
    assert chunked.keys() == plain.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(
            chunked[name], plain[name], atol=1e-6, rtol=0, msg=lambda m, n=name: f"{n}: {m}"
        )
    probs = torch.softmax(logits.detach() / 0.7, -1)
    torch.testing.assert_close(entropy, -(probs * probs.log()).sum(-1), atol=1e-6, rtol=0)
