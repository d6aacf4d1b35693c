"""videor1: train multimodal language models to reason about video over time.

A tested reimplementation of Video-R1 (arXiv 2503.21776): data and media handling, CoT annotation,
SFT cold start, T-GRPO reinforcement learning, evaluation, and a procedural temporal dataset that
lets the whole pipeline run on a CPU.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("videor1")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
