"""``Predictor`` and ``videor1 infer`` on a procedural video and image with the tiny model."""

from __future__ import annotations

import json

import pytest

from videor1.config import MediaConfig, SamplingConfig
from videor1.infer import Predictor, generation_kwargs, make_sample, split_output


def test_split_output():
    assert split_output("<think> a b </think>\n<answer> B </answer>") == ("a b", "B", True)
    assert split_output("because X <answer>3</answer>") == ("because X", "3", True)
    assert split_output(" just text ") == ("", "just text", False)


def test_generation_kwargs_reference_and_greedy():
    ref = generation_kwargs(SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=1024))
    assert ref == {"max_new_tokens": 1024, "do_sample": True, "temperature": 0.1, "top_p": 0.001, "top_k": 0}
    greedy = generation_kwargs(SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=5), greedy=True)
    assert greedy == {"max_new_tokens": 5, "do_sample": False}
    assert generation_kwargs(SamplingConfig(temperature=0.0, max_new_tokens=5))["do_sample"] is False


def test_make_sample_letters_options(tmp_path):
    video = tmp_path / "clip.mp4"
    sample, root = make_sample("Which way?", video=video, options=["left", "right"])
    assert sample.options == ["A. left", "B. right"] and sample.problem_type == "multiple choice"
    assert root == tmp_path and sample.path == "./clip.mp4"
    sample, _ = make_sample("How many?", image=video, problem_type="numerical")
    assert sample.options == [] and sample.data_type == "image"
    with pytest.raises(ValueError, match="exactly one"):
        make_sample("?", video=video, image=video)


def test_predictor_on_video_and_image(tiny_model_dir, synth_dir):
    records = json.loads((synth_dir / "test.json").read_text())
    video = next(r for r in records if r["data_type"] == "video")
    image = next(r for r in records if r["data_type"] == "image")
    predictor = Predictor(
        tiny_model_dir,
        device="cpu",
        media=MediaConfig(video_min_pixels=3136, video_max_pixels=16 * 28 * 28),
        sampling=SamplingConfig(temperature=0.1, top_p=0.001, max_new_tokens=6),
    )
    out = predictor.predict(video["problem"], video=synth_dir / video["path"], options=video["options"])
    assert out.num_frames == 8  # an 8-frame synth clip at 2 fps: all 8 frames
    assert out.raw_text and out.answer == out.raw_text.strip() and not out.has_answer_tag
    again = predictor.predict(video["problem"], video=synth_dir / video["path"], options=video["options"])
    assert again.raw_text == out.raw_text  # top-p 0.001 keeps one token per step: deterministic
    out = predictor.predict("What colour is the square?", image=synth_dir / image["path"])
    assert out.num_frames is None and out.raw_text


def test_infer_command(tiny_model_dir, synth_dir, capsys):
    from videor1.cli import main

    records = json.loads((synth_dir / "test.json").read_text())
    video = next(r for r in records if r["data_type"] == "video")
    argv = [
        "-q", "infer", "--model", str(tiny_model_dir), "--video", str(synth_dir / video["path"]),
        "--question", "Which way does it move?", "--options", "left", "right", "--frames", "4",
        "--max-pixels", str(16 * 28 * 28), "--max-new-tokens", "4", "--greedy", "--device", "cpu", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_frames"] == 4 and set(out) >= {"reasoning", "answer", "raw_text", "has_answer_tag"}


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--question", ""], "the question is empty"),
        (["--question", "  \n "], "the question is empty"),
        (["--question", "Which?", "--problem-type", "multiple choice"], "needs options"),
    ],
)
def test_infer_refuses_an_empty_question_before_loading(synth_dir, tmp_path, capsys, extra, says):
    from videor1.cli import main

    records = json.loads((synth_dir / "test.json").read_text())
    video = next(r for r in records if r["data_type"] == "video")
    missing_model = tmp_path / "never-loaded"  # the check comes first: no model is needed to fail
    argv = ["-q", "infer", "--model", str(missing_model), "--video", str(synth_dir / video["path"]), *extra]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert says in err and "Traceback" not in err
