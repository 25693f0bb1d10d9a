"""Bit packing of +-1 tensors: the layout every packed kernel and file shares.

Bit layout (one row of K values, little-endian 64-bit words):

    value k  ->  word k // 64, bit k % 64 (bit 0 = the word's least significant bit)
    bit 1 = +1 (x >= 0, so sign(0) = +1), bit 0 = -1

A row takes ceil(K / 64) words; the bits past K in its last word are 0. Both
operands of a product are padded the same way, so a padding bit XORs to 0 and
never counts: for +-1 vectors a, w of length K,

    a . w = K - 2 * popcount(a XOR w)

summed over the words. (XNOR-popcount is the same identity seen from the other
side: matches - mismatches = 2 * popcount(XNOR) - K.)

The kernels want the weights in *panels* (``to_panels``): column blocks of
``lanes`` output units, stored so that one 512-bit vector load holds the same
K word of 8 neighbouring columns, and a panel of K words x lanes stays in L1.
"""

from __future__ import annotations

import numpy as np

WORD_BITS = 64


def words_for(k: int) -> int:
    """64-bit words to hold a row of ``k`` bits."""
    return -(-k // WORD_BITS)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Boolean rows (..., K) -> uint64 words (..., ceil(K/64)) in the layout above (1 = +1)."""
    bits = np.asarray(bits, dtype=bool)
    k = bits.shape[-1]
    pad = words_for(k) * WORD_BITS - k
    if pad:
        bits = np.concatenate([bits, np.zeros((*bits.shape[:-1], pad), dtype=bool)], axis=-1)
    # packbits(little) puts element 8j + i in bit i of byte j; bytes read as little-endian
    # uint64 then put element 64w + i in bit i of word w.
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False)


def pack_signs(x: np.ndarray) -> np.ndarray:
    """Real rows (..., K) -> words (..., ceil(K/64)): bit 1 where x >= 0 (sign(0) = +1), as ``nn.binarize.sign``."""
    return pack_bits(np.asarray(x) >= 0)


def unpack_bits(words: np.ndarray, k: int) -> np.ndarray:
    """Words (..., ceil(k/64)) -> booleans (..., k); the inverse of ``pack_bits``."""
    words = np.ascontiguousarray(words, dtype=np.uint64)
    as_bytes = words.view(np.uint8).reshape(*words.shape[:-1], words.shape[-1] * 8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little", count=k).astype(bool)


def unpack_signs(words: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """Words -> +-1 values (..., k) in ``dtype``."""
    return np.where(unpack_bits(words, k), 1, -1).astype(dtype)


def to_panels(words: np.ndarray, lanes: int) -> np.ndarray:
    """Weight rows (N, KW) (words, or any per-row values) -> panels (ceil(N / lanes), KW, lanes): panel p, word k, lane j = row p*lanes + j.

    Rows past N are zero words: their outputs are computed and dropped (the
    caller slices columns [:N]). Each panel is contiguous, KW * lanes * 8 bytes.
    """
    n, kw = words.shape
    panels = -(-n // lanes)
    padded = np.zeros((panels * lanes, kw), dtype=words.dtype)
    padded[:n] = words
    return np.ascontiguousarray(padded.reshape(panels, lanes, kw).transpose(0, 2, 1))


def from_panels(panels: np.ndarray, n: int) -> np.ndarray:
    """Panels (P, KW, lanes) -> weight rows (n, KW); the inverse of ``to_panels``."""
    p, kw, lanes = panels.shape
    return np.ascontiguousarray(panels.transpose(0, 2, 1).reshape(p * lanes, kw)[:n])
