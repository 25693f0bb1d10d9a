"""A process told to use n threads computes with n, in torch and in numba, after numba's kernels have run."""

import subprocess
import sys

PROBE = """
import torch, numba
from bnnctl.kernels.threads import use_threads
use_threads(1)
from bnnctl.kernels.compress import sign_message
sign_message(torch.randn(10_000), None, 64)   # numba's first parallel kernel: starts its OpenMP layer
print(torch.get_num_threads(), numba.get_num_threads(), numba.threading_layer())
"""


def test_numba_starting_its_openmp_layer_does_not_reset_torchs_thread_count():
    # A fresh process: numba's layer starts once per process, and that start is what used to reset torch.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["1", "1"], out
