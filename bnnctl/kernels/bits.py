"""Bit packing of +-1 values: the one layout every packed kernel, file and gradient message shares.

Bit layout (a row of K values, little-endian 64-bit words):

    element k  ->  word k // 64, bit k % 64 (bit 0 = the word's least significant bit)
    bit 1 = +1 (x >= 0, so sign(0) = +1; NaN packs as 0), bit 0 = -1

A row takes ceil(K / 64) words; the bits past K in its last word are 0. Read
as bytes (the words are little-endian), the same bits are: element k in byte
k // 8, bit k % 8. A gradient message (``compress``) is that byte view cut
after its last element, ceil(K / 8) bytes. Both operands of a product are
padded the same way, so a padding bit XORs to 0 and never counts: for +-1
vectors a, w of length K,

    a . w = K - 2 * popcount(a XOR w)

summed over the words. (XNOR-popcount is the same identity seen from the other
side: matches - mismatches = 2 * popcount(XNOR) - K.)

Packers, all of this one layout:

* ``pack_bits`` / ``pack_signs`` and their inverses: numpy rows (..., K), the
  one implementation (``np.packbits``, little bit order);
* ``pack_sign_bytes`` / ``unpack_sign_bytes``: a flat torch tensor as bytes;
  on the CPU through ``pack_bits``, on another device the same bits in torch
  ops, so that the tensor never leaves its device;
* ``pack_signs_channels_last``: float (N, C, P) -> words (N, P, CW), the sign
  of channel c at position p in word c // 64, bit c % 64: a numba pass that
  transposes while it packs (what packed activations need).

The kernels want the weights in *panels* (``to_panels``): column blocks of
``lanes`` output units, stored so that one 512-bit vector load holds the same
K word of 8 neighbouring columns, and a panel of K words x lanes stays in L1.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import prange

from bnnctl.kernels.threads import parallel_kernel

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


# --- flat torch tensors as bytes (gradient messages) ----------------------------------

_BIT_WEIGHTS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)  # bit i of a byte


def pack_sign_bytes(c: torch.Tensor) -> torch.Tensor:
    """(n,) real -> (ceil(n/8),) uint8: bit i % 8 of byte i // 8 is 1 where c[i] >= 0; pad bits are 0.

    The byte view of ``pack_signs``' words, cut after element n - 1.
    """
    n = c.numel()
    positive = c.detach().reshape(-1) >= 0
    if positive.device.type == "cpu":
        return torch.from_numpy(pack_bits(positive.numpy()).view(np.uint8)[: -(-n // 8)])
    bits = torch.nn.functional.pad(positive.to(torch.uint8), (0, (-n) % 8)).reshape(-1, 8)
    return (bits * _BIT_WEIGHTS.to(c.device)).sum(1, dtype=torch.uint8)


def unpack_sign_bytes(packed: torch.Tensor, n: int) -> torch.Tensor:
    """(ceil(n/8),) uint8 -> (n,) float32 of +1 (bit 1) and -1 (bit 0); the inverse of ``pack_sign_bytes``."""
    if packed.device.type == "cpu":
        as_bytes = packed.detach().reshape(-1).numpy()
        words = np.zeros(words_for(8 * as_bytes.size) * 8, dtype=np.uint8)
        words[: as_bytes.size] = as_bytes
        return torch.from_numpy(unpack_signs(words.view("<u8"), n))
    bits = (packed.reshape(-1, 1) & _BIT_WEIGHTS.to(packed.device)) != 0  # (bytes, 8)
    return bits.reshape(-1)[:n].to(torch.float32) * 2 - 1


# --- packed activations: channels-last signs -------------------------------------------


@parallel_kernel()
def _sign_words(x):
    """x (N, C, P) float32, channels first -> words (N, P, ceil(C / 64)): bit c of position p = x[n, c, p] >= 0.

    Each word is built in a register from its 64 channels and stored once:
    the fast order for P = 1 (dense activations), where those are contiguous.
    """
    n, c, p = x.shape
    cw = (c + 63) // 64
    words = np.empty((n, p, cw), dtype=np.uint64)
    for e in prange(n):
        for pos in range(p):
            for w in range(cw):
                word = np.uint64(0)
                for b in range(min(64, c - w * 64)):
                    if x[e, w * 64 + b, pos] >= 0:
                        word |= np.uint64(1) << np.uint64(b)
                words[e, pos, w] = word
    return words


@parallel_kernel()
def _sign_words_spatial(x):
    """As ``_sign_words``, in the fast order for P > 1: each channel's P values read in order, bits set in place.

    An example's P x CW words (a few KiB) stay in L1 while its channels stream past.
    """
    n, c, p = x.shape
    words = np.zeros((n, p, (c + 63) // 64), dtype=np.uint64)
    for e in prange(n):
        for ch in range(c):
            word, bit = ch // 64, np.uint64(1) << np.uint64(ch % 64)
            for pos in range(p):
                if x[e, ch, pos] >= 0:
                    words[e, pos, word] |= bit
    return words


def pack_signs_channels_last(x: np.ndarray) -> np.ndarray:
    """x (N, C, P) float32 -> words (N, P, ceil(C / 64)): ``pack_signs(x.transpose(0, 2, 1))`` in one pass."""
    return _sign_words(x) if x.shape[2] == 1 else _sign_words_spatial(x)


# --- weight panels ------------------------------------------------------------------------


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
