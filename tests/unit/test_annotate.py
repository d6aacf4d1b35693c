"""Teacher-reply judging (threshold is strict), reply parsing and frame encoding for CoT annotation."""

from __future__ import annotations

import base64
import io

import pytest
import torch

from videor1.annotate import judge
from videor1.teachers import _Retryable, chat_messages, encode_image, parse_chat_reply
from videor1.types import ImageInput, Sample, VideoClip


def _sample(problem_type="OCR", answer="a b c d e", options=None):
    return Sample(
        1, "Read it.", "video", problem_type, options or [], f"<answer>{answer}</answer>", "./v.mp4"
    )


def test_judge_keeps_only_above_threshold_with_think():
    sample = _sample()
    kept = judge(sample, 0, "<think> I read it. </think><answer>a b c d e</answer>", 0.6, "default")
    assert (kept.status, kept.reward, kept.process) == ("kept", 1.0, "<think>I read it.</think>")
    # two of five words wrong: WER 2/5 = 0.4, reward 1 - 0.4 = 0.6, not > 0.6
    edge = judge(sample, 0, "<think>x</think><answer>a b x y e</answer>", 0.6, "default")
    assert (edge.status, edge.reward, edge.process) == ("rejected", pytest.approx(0.6), None)
    # one word wrong: reward 0.8 > 0.6
    assert judge(sample, 0, "<think>x</think><answer>a b c d z</answer>", 0.6, "default").status == "kept"
    assert judge(sample, 0, "<answer>a b c d e</answer>", 0.6, "default").status == "no_think"
    assert judge(sample, 0, "<think> </think><answer>a b c d e</answer>", 0.6, "default").status == "no_think"


def test_judge_reward_mode_matters():
    sample = _sample("multiple choice", "B", ["A. x", "B. y"])
    reply = "<think>t</think><answer>b</answer>"
    assert judge(sample, 0, reply, 0.6, "default").status == "kept"
    assert judge(sample, 0, reply, 0.6, "video-r1").status == "rejected"  # case-sensitive letters


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>",
        b'{"choices": []}',
        b'{"choices": [{"message": {}}]}',
        b'{"choices": [{"message": {"content": null}}]}',
    ],
)
def test_malformed_replies_are_retryable(raw):
    with pytest.raises(_Retryable) as err:
        parse_chat_reply(raw)
    assert err.value.kind == "malformed"


def test_reply_content():
    assert parse_chat_reply(b'{"choices": [{"message": {"content": "hi"}}]}') == "hi"


def test_frames_become_image_url_parts_before_the_text():
    from PIL import Image

    frames = torch.zeros(4, 3, 28, 56, dtype=torch.uint8)
    frames[:, 0] = 255  # red
    clip = VideoClip(frames=frames, frame_indices=[0, 1, 2, 3], sample_fps=2.0, duration=2.0)
    messages = chat_messages(_sample("free-form", "red"), clip, "png")
    parts = messages[0]["content"]
    assert [p["type"] for p in parts] == ["image_url"] * 4 + ["text"]
    assert parts[-1]["text"].startswith("Read it.\n")
    url = parts[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (56, 28) and decoded.getpixel((0, 0)) == (255, 0, 0)
    image = ImageInput(pixels=frames[0])
    assert len(chat_messages(_sample(), image)[0]["content"]) == 2
    with pytest.raises(ValueError, match="image_format"):
        encode_image(frames[0], "gif")
