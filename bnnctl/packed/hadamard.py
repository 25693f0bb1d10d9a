"""The Hadamard block product on packed operands: the binarizer's block scales with ``kernels.hadamard``'s signs.

The layout, the product and its formula are ``bnnctl.kernels.hadamard``'s;
here the scales come from ``nn.binarize.block_mean_abs``, bit for bit what the
Hadamard binarizer multiplies its signs with.
"""

from __future__ import annotations

import numpy as np
import torch

from bnnctl.kernels.hadamard import BlockLayout, hadamard_gemm, hadamard_panels
from bnnctl.nn.binarize import block_mean_abs

__all__ = ["BlockLayout", "hadamard_gemm", "hadamard_pack", "hadamard_panels"]


def hadamard_pack(x: torch.Tensor | np.ndarray, beta: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (R, K) -> (sign words (R, KW), block scales (R, blocks) float32), the scales as the binarizer computes them."""
    x = torch.as_tensor(x, dtype=torch.float32)
    layout = BlockLayout(x.shape[-1], beta)
    scales = (
        block_mean_abs(x, beta)[..., ::beta].contiguous().numpy()
    )  # one value per block, bit for bit the binarizer's
    return layout.pack_signs(x.numpy()), scales.astype(np.float32)
