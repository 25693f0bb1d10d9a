"""The Hadamard block product ("xHBNN"): packed signs and one float scale per block of beta.

A Hadamard-binarized operand is delta (.) sign(x), with delta the mean of |x|
over consecutive blocks of beta elements (``nn.binarize.Hadamard``). Within a
block both operands are constant-scaled +-1 vectors, so

    a . w = sum over blocks j of  s_a[j] * s_w[j] * (L_j - 2 * popcount((a XOR w) in block j))

with L_j the block's length (beta, or less for a row's last block). This is
HadaNets' formula (Akhauri 2019, arXiv:1905.10759) with its affine correction: the printed
s_w s_a popcount(xnor) lacks the "2 * ... - L" that turns a match count into a
+-1 dot product. Both operands must use the same beta, blocked along K.

Bit layout (``bits``' words, bit 1 = +1, but block-aligned, so a block never straddles words):
  beta <= 64: 64 // beta blocks per word; block j sits in word j // (64 // beta),
              bits (j mod (64 // beta)) * beta ... + L_j - 1;
  beta > 64:  ceil(beta / 64) words per block; block j starts at word j * ceil(beta / 64).
Unused bits are 0 in both operands and never count. Shapes: rows (R, K) ->
words (R, KW), scales (R, ceil(K / beta)) float32. The scales are the
binarizer's (``packed.hadamard.hadamard_pack`` computes them); this module
packs the signs (``BlockLayout.pack_signs``) and multiplies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from bnnctl.kernels.bits import WORD_BITS, pack_bits, to_panels, words_for
from bnnctl.kernels.intrinsics import popcount64
from bnnctl.kernels.threads import parallel_kernel
from bnnctl.kernels.xnor import NR


@dataclass(frozen=True)
class BlockLayout:
    """Where each block of a row of ``k`` elements lives in the packed words."""

    k: int
    beta: int

    @property
    def blocks(self) -> int:
        return -(-self.k // self.beta)

    @property
    def blocks_per_word(self) -> int:
        return WORD_BITS // self.beta if self.beta <= WORD_BITS else 0

    @property
    def words_per_block(self) -> int:
        return words_for(self.beta) if self.beta > WORD_BITS else 0

    @property
    def words(self) -> int:
        if self.beta <= WORD_BITS:
            return -(-self.blocks // self.blocks_per_word)
        return self.blocks * self.words_per_block

    def lengths(self) -> np.ndarray:
        """L_j for each block: beta, the last one k - (blocks - 1) * beta."""
        lengths = np.full(self.blocks, self.beta, dtype=np.int32)
        if self.blocks:
            lengths[-1] = self.k - (self.blocks - 1) * self.beta
        return lengths

    def slot_positions(self) -> np.ndarray:
        """The bit position (in the row's words seen as one bit string) of each of the k elements."""
        element = np.arange(self.k)
        block, within = element // self.beta, element % self.beta
        if self.beta <= WORD_BITS:
            return (block // self.blocks_per_word) * WORD_BITS + (block % self.blocks_per_word) * self.beta + within
        return block * self.words_per_block * WORD_BITS + within

    def pack_signs(self, x: np.ndarray) -> np.ndarray:
        """Rows (R, k) real -> sign words (R, words) in this block-aligned layout (bit 1 where x >= 0)."""
        bits = np.zeros((x.shape[0], self.words * WORD_BITS), dtype=bool)
        bits[:, self.slot_positions()] = np.asarray(x) >= 0
        return pack_bits(bits)


@parallel_kernel()
def _hadamard_gemm_into(a, a_scales, panels, scale_panels, lengths, beta, blocks_per_word, words_per_block, out):
    """out (M, P * NR) float32; threads split the panels, the lane loop (NR columns) is what LLVM vectorizes."""
    m, blocks, nr = a.shape[0], lengths.shape[0], panels.shape[2]
    mask = np.uint64(0xFFFFFFFFFFFFFFFF) if beta >= 64 else (np.uint64(1) << np.uint64(beta)) - np.uint64(1)
    for p in prange(panels.shape[0]):
        acc = np.empty(nr, dtype=np.float32)
        for i in range(m):
            acc[:] = 0.0
            for j in range(blocks):
                length = lengths[j]
                scale = a_scales[i, j]
                if blocks_per_word:
                    word = j // blocks_per_word
                    shift = np.uint64((j % blocks_per_word) * beta)
                    a_word = a[i, word]
                    for lane in range(nr):
                        mismatches = popcount64(((a_word ^ panels[p, word, lane]) >> shift) & mask)
                        acc[lane] += scale * scale_panels[p, j, lane] * np.float32(length - 2 * np.int64(mismatches))
                else:
                    for lane in range(nr):
                        mismatches = 0
                        for t in range(j * words_per_block, (j + 1) * words_per_block):
                            mismatches += popcount64(a[i, t] ^ panels[p, t, lane])
                        acc[lane] += scale * scale_panels[p, j, lane] * np.float32(length - 2 * np.int64(mismatches))
            out[i, p * nr : (p + 1) * nr] = acc


def hadamard_panels(w_words: np.ndarray, w_scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weight rows (N, KW) and their scales (N, blocks) as panels of NR columns (``bits.to_panels``)."""
    return to_panels(w_words, NR), to_panels(np.ascontiguousarray(w_scales, dtype=np.float32), NR)


def hadamard_gemm(
    a_words: np.ndarray, a_scales: np.ndarray, panels: np.ndarray, scale_panels: np.ndarray, k: int, n: int, beta: int
) -> np.ndarray:
    """(M, n) float32: the Hadamard-binarized rows of A times the n packed weight rows (``hadamard_panels``)."""
    layout = BlockLayout(k, beta)
    if a_words.shape[1] != layout.words or panels.shape[1] != layout.words or scale_panels.shape[1] != layout.blocks:
        raise ValueError(f"hadamard_gemm: words {a_words.shape}, panels {panels.shape} do not fit k={k}, beta={beta}")
    out = np.empty((a_words.shape[0], panels.shape[0] * panels.shape[2]), dtype=np.float32)
    _hadamard_gemm_into(
        np.ascontiguousarray(a_words),
        np.ascontiguousarray(a_scales, dtype=np.float32),
        panels,
        scale_panels,
        layout.lengths(),
        beta,
        layout.blocks_per_word,
        layout.words_per_block,
        out,
    )
    return out[:, :n]
