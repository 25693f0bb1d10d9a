"""Shared fixtures: tiny configs, temporary run folders, and where the real data is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import fashion_root


@pytest.fixture
def fashion():
    """The real Fashion-MNIST root; CI (CI set) must have it, elsewhere the test is skipped."""
    root = fashion_root()
    if root is None:
        if os.environ.get("CI"):
            pytest.fail("Fashion-MNIST not found: CI must provide ../shared/data or BNNCTL_DATA")
        pytest.skip("Fashion-MNIST not available (set BNNCTL_DATA)")
    return root


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA: elsewhere they are skipped, saying so (never failed, never silently passed)."""
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False here)")
    for item in gpu_tests:
        item.add_marker(skip)
