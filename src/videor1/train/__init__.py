"""Training recipes (``sft.py``, ``rl.py``) and what they share (``common.py``, ``data.py``).

Recipes are read top to bottom: setup → train → save → resume → cleanup. ``common`` owns process
groups, model wrapping (DDP / FSDP2), optimiser and schedule, atomic checkpoints with full resume
state, and metric logging; ``data`` owns the dataset bootstrap, the resumable distributed sampler
and micro-batch collation. Submodules are imported directly (this file stays import-light).
"""
