"""The Qwen2-VL chat template, written out so tiny models carry the same prompt layout as real ones.

Rendered text (what the released Qwen2-VL / Qwen2.5-VL processors produce)::

    <|im_start|>system
    You are a helpful assistant.<|im_end|>
    <|im_start|>user
    <|vision_start|><|video_pad|><|vision_end|>What happens first?<|im_end|>
    <|im_start|>assistant

* A default system message is inserted when the first message is not a system message. Qwen2-VL and
  Qwen2.5-VL do this (``"You are a helpful assistant."``); Qwen3-VL does not, so its tiny models get
  ``default_system=None``.
* Content may be a string or a list of parts; an ``image`` / ``video`` part (by ``type`` or by key,
  also ``image_url``) becomes ``<|vision_start|><|image_pad|><|vision_end|>`` /
  ``<|vision_start|><|video_pad|><|vision_end|>`` (the processor expands the single pad into one pad
  per visual token), a ``text`` part is copied verbatim, parts are concatenated with no separator.
  Qwen3-VL tiny models use a bare ``<|video_pad|>`` for videos (see ``wrap_video``): their processor
  writes ``<t seconds><|vision_start|>...<|vision_end|>`` for every temporal patch itself.
* ``add_vision_id=True`` prefixes ``Picture N: `` / ``Video N: `` (counted over the conversation).
* ``add_generation_prompt=True`` appends ``<|im_start|>assistant\\n``.

Not supported (not used by Video-R1): tool calls. Assistant turns are rendered like any other turn,
so SFT targets can be written as an assistant message.
"""

from __future__ import annotations

_TEMPLATE = r"""{%- set image_count = namespace(value=0) -%}
{%- set video_count = namespace(value=0) -%}
{%- for message in messages -%}
{%- if loop.first and message['role'] != 'system' and DEFAULT_SYSTEM -%}
{{- '<|im_start|>system\n' + DEFAULT_SYSTEM + '<|im_end|>\n' -}}
{%- endif -%}
{{- '<|im_start|>' + message['role'] + '\n' -}}
{%- if message['content'] is string -%}
{{- message['content'] -}}
{%- else -%}
{%- for part in message['content'] -%}
{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}
{%- set image_count.value = image_count.value + 1 -%}
{%- if add_vision_id -%}{{- 'Picture ' + image_count.value|string + ': ' -}}{%- endif -%}
{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}
{%- elif part['type'] == 'video' or 'video' in part -%}
{%- set video_count.value = video_count.value + 1 -%}
{%- if add_vision_id -%}{{- 'Video ' + video_count.value|string + ': ' -}}{%- endif -%}
{{- VIDEO_PLACEHOLDER -}}
{%- elif 'text' in part -%}
{{- part['text'] -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}
"""

QWEN2_VL_DEFAULT_SYSTEM = "You are a helpful assistant."


def qwen2_vl_chat_template(
    default_system: str | None = QWEN2_VL_DEFAULT_SYSTEM, *, wrap_video: bool = True
) -> str:
    """The Jinja chat template; ``default_system=None`` inserts no system message by default.

    ``wrap_video=False`` writes a bare ``<|video_pad|>`` for a video part: the Qwen3-VL processor
    (transformers 5.x) replaces it with ``<t seconds><|vision_start|>...<|vision_end|>`` per temporal
    patch itself, and would otherwise nest those markers inside a second vision_start/vision_end pair.
    """
    if default_system is not None and ("'" in default_system or "\\" in default_system):
        raise ValueError(f"default_system must not contain quotes or backslashes: {default_system!r}")
    value = "none" if default_system is None else f"'{default_system}'"
    video = "'<|vision_start|><|video_pad|><|vision_end|>'" if wrap_video else "'<|video_pad|>'"
    return (
        "{%- set DEFAULT_SYSTEM = "
        + value
        + " -%}\n{%- set VIDEO_PLACEHOLDER = "
        + video
        + " -%}\n"
        + _TEMPLATE
    )
