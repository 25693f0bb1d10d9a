"""Gradient compression with error feedback: what one rank sends of a flat gradient, and what it keeps.

1-bit SGD (Seide et al. 2014) and EF-signSGD (Karimireddy et al. 2019) send
the sign of the gradient with a scale and keep what the message lost, the
residual, to add to the next step's gradient. Nothing is lost for good: over
steps, the sum of what was sent follows the sum of the gradients.

For a flat float32 gradient g (n,) and this rank's residual e (n,):

* ``sign``: c = g + e; one scale s = mean |c| for the tensor; the message is
  the bits (c >= 0), packed 8 per byte (``kernels.bits``' layout as bytes:
  element i is bit i % 8 of byte i // 8, least significant first), and s. It decodes to
  d = s * (+1 where the bit is 1, -1 where it is 0), and e <- c - d.
  Bytes: ceil(n / 8) + 4.
* ``hadamard``: the same with one scale per block of ``beta`` consecutive
  elements (the last block may be shorter; HadaNets' block-mean scale),
  ``bnn.binarize.block_mean_abs``. Bytes: ceil(n / 8) + 4 ceil(n / beta).
* ``bf16``: c rounded to bf16, 2 bytes per element, the rounding kept as the
  residual. ``none``: float32, 4 bytes per element, no residual.

sign(0) is +1 here, as everywhere in bnnctl.

On the CPU the messages are made and decoded by one-pass numba loops
(``bnnctl.kernels.compress``); elsewhere by the torch expressions below, which
define them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bnnctl.kernels import compress as kernels
from bnnctl.kernels.bits import pack_sign_bytes, unpack_sign_bytes
from bnnctl.nn.binarize import block_mean_abs

METHODS = ("none", "bf16", "sign", "hadamard")


def pack_signs(c: torch.Tensor) -> torch.Tensor:
    """(n,) float -> (ceil(n/8),) uint8: bit i % 8 of byte i // 8 is 1 where c[i] >= 0; pad bits are 0.

    ``kernels.bits``' one layout as bytes (``pack_sign_bytes``): on the CPU its
    numpy packer, on another device the same bits in torch ops.
    """
    return pack_sign_bytes(c)


def unpack_signs(packed: torch.Tensor, n: int) -> torch.Tensor:
    """(ceil(n/8),) uint8 -> (n,) float32 of +1 (bit 1) and -1 (bit 0)."""
    return unpack_sign_bytes(packed, n)


@dataclass
class Message:
    """What a rank sends for one flat gradient: ``payload`` (packed bits or values) and ``scales``."""

    method: str
    n: int
    payload: torch.Tensor
    scales: torch.Tensor | None = None
    beta: int = 0

    @property
    def nbytes(self) -> int:
        """The bytes this message puts on the wire (payload plus scales)."""
        scale_bytes = 0 if self.scales is None else self.scales.numel() * self.scales.element_size()
        return self.payload.numel() * self.payload.element_size() + scale_bytes

    def add_to(self, total: torch.Tensor) -> None:
        """total (n,) float32 += the decoded message, without materializing it where a kernel can."""
        if not _kernel_friendly(total) or self.method == "none":
            total += self.decode()
        elif self.method == "bf16":
            kernels.add_decoded_bf16(total, self.payload)
        else:
            assert self.scales is not None  # sign and block messages carry their scales
            kernels.add_decoded_signs(total, self.payload, self.scales, self.n if self.method == "sign" else self.beta)

    def decode(self) -> torch.Tensor:
        """The (n,) float32 gradient this message stands for."""
        if self.method == "none":
            return self.payload
        if self.method == "bf16":
            return self.payload.to(torch.float32)
        signs = unpack_signs(self.payload, self.n)
        assert self.scales is not None  # sign and block messages carry their scales
        if self.method == "sign":
            return signs * self.scales
        return signs * self.scales.repeat_interleave(self.beta)[: self.n]


def block_scales(c: torch.Tensor, beta: int) -> torch.Tensor:
    """mean |c| over each block of ``beta`` elements, one value per block (the last block may be shorter)."""
    n = c.numel()
    starts = torch.arange(0, n, beta, device=c.device)
    return block_mean_abs(c.reshape(1, n), beta).reshape(n)[starts]


def compress(
    g: torch.Tensor, residual: torch.Tensor | None, method: str, beta: int = 64
) -> tuple[Message, torch.Tensor | None]:
    """(message, new residual) for a flat float32 gradient ``g`` and the residual kept from the last step."""
    if method not in METHODS:
        raise ValueError(f"dist.compress must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "none":
        return Message("none", g.numel(), g), None
    if _kernel_friendly(g) and (residual is None or _kernel_friendly(residual)):
        return _compress_on_cpu(g, residual, method, beta)
    c = g if residual is None else g + residual
    if method == "bf16":
        message = Message("bf16", c.numel(), c.to(torch.bfloat16))
    elif method == "sign":
        message = Message("sign", c.numel(), pack_signs(c), c.abs().mean().reshape(1))
    else:
        message = Message("hadamard", c.numel(), pack_signs(c), block_scales(c, beta), beta)
    return message, c - message.decode()


def _kernel_friendly(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() and t.dim() == 1


def _compress_on_cpu(g: torch.Tensor, residual: torch.Tensor | None, method: str, beta: int):
    """``compress`` by the one-pass loops: the same message and residual, up to the scales' summation order."""
    n = g.numel()
    if method == "bf16":
        payload, new_residual = kernels.bf16_message(g, residual)
        return Message("bf16", n, payload), new_residual
    block = n if method == "sign" else beta
    packed, scales, new_residual = kernels.sign_message(g, residual, block)
    return Message(method, n, packed, scales, 0 if method == "sign" else beta), new_residual


def compression_ratio(method: str, n: int, beta: int = 64) -> float:
    """float32 bytes over the message's bytes for a tensor of ``n`` elements."""
    sizes = {
        "none": 4 * n,
        "bf16": 2 * n,
        "sign": -(-n // 8) + 4,
        "hadamard": -(-n // 8) + 4 * -(-n // beta),
    }
    return 4 * n / sizes[method]
