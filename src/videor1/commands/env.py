"""``videor1 env``: what a bug report needs."""

from __future__ import annotations

import argparse

HELP = "print versions, devices and threads (paste this into bug reports)"
DESCRIPTION = "Print videor1, Python, torch, transformers and PyAV versions, the devices and thread counts."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def collect() -> dict[str, str]:
    import os
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from videor1 import __version__

    info = {
        "videor1": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda_available": str(torch.cuda.is_available()),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "gpu_count": str(torch.cuda.device_count()),
        "torch_threads": str(torch.get_num_threads()),
        "cpu_count": str(os.cpu_count()),
    }
    for pkg in (
        "transformers",
        "torchvision",
        "datasets",
        "peft",
        "av",
        "tokenizers",
        "vllm",
        "flash-attn",
    ):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "not installed"
    return info


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    info = collect()
    if args.json:
        print(json.dumps(info))  # noqa: T201 - CLI output
        return 0
    table = Table(title="videor1 environment")
    table.add_column("key")
    table.add_column("value")
    for k, v in info.items():
        table.add_row(k, v)
    Console().print(table)
    return 0
