"""A library call leaves the process as it found it: threads, denormals, environment, matplotlib, loggers."""

from __future__ import annotations

import logging
import os

import matplotlib
import pytest
import torch

import bnnctl
from bnnctl.process import COMPILER_LOGGERS, ProcessState, computing, denormals_flushed


def _state() -> dict:
    return {
        "torch_threads": torch.get_num_threads(),
        "denormals_flushed": denormals_flushed(),
        "environ": dict(os.environ),
        "backend": matplotlib.get_backend(),
        "loggers": {name: logging.getLogger(name).level for name in COMPILER_LOGGERS},
    }


def test_the_denormal_probe_reads_the_setting():
    before = denormals_flushed()
    try:
        torch.set_flush_denormal(True)
        assert denormals_flushed() is True
        torch.set_flush_denormal(False)
        assert denormals_flushed() is False
    finally:
        torch.set_flush_denormal(before)


def test_computing_restores_what_it_and_its_block_changed():
    before = _state()
    with computing(threads=1, flush_denormals=True):
        assert torch.get_num_threads() == 1 and denormals_flushed()
        os.environ["BNNCTL_TEST_VARIABLE"] = "set inside"
        logging.getLogger("torch._dynamo").setLevel(logging.CRITICAL)
    assert _state() == before


def test_computing_restores_after_an_error():
    before = _state()
    with pytest.raises(RuntimeError), computing(threads=1, flush_denormals=True):
        raise RuntimeError("boom")
    assert _state() == before


def test_train_in_process_leaves_threads_denormals_environment_and_backend(tmp_path):
    """The MLflow logger sets an environment variable, fit sets threads and flushes denormals, the figures draw."""
    torch.set_num_threads(2)
    before = _state()
    result = bnnctl.train(
        ["debug=tiny", "train.epochs=1", "train.threads=1", "logger=mlflow", f"runs_dir={tmp_path}"]
        + [f"logger.tracking_uri=file:{tmp_path / 'mlruns'}"]
    )
    assert result.run is not None and (result.path / "curves.png").is_file()
    assert _state() == before


def test_process_state_snapshot_is_comparable():
    assert ProcessState.now() == ProcessState.now()
