"""Helpers the tests share (imported as ``from helpers import ...``; fixtures stay in conftest.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from bnnctl.config import TrainConfig
from bnnctl.config.load import compose_train

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def tiny(*overrides: str) -> TrainConfig:
    """The debug=tiny config (synthetic data, 64 units, eager, CPU) plus overrides."""
    return compose_train(["debug=tiny", *overrides])


def default_sigint() -> None:
    """In the child: SIGINT at its default, as a terminal's foreground job has it.

    A suite started in the background by a non-interactive shell (``pytest &``)
    runs with SIGINT ignored, and children inherit an ignored signal: the
    Ctrl-C tests would then test nothing and hang.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fashion_root() -> str | None:
    """A folder holding Fashion-MNIST, or None."""
    candidates = [os.environ.get("BNNCTL_DATA"), str(SHARED_DATA)]
    for root in filter(None, candidates):
        if (Path(root) / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file():
            return root
    if Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file():
        return "/usr/share/datasets/fashion-mnist"
    return None
