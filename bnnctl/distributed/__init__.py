"""Data-parallel training pieces: gradient compression with error feedback (``compress``) and the DDP
communication hooks that send it (``hooks``). Issue 14 wires them into ``bnnctl train``; so far they are
used by their tests only."""

from bnnctl.distributed.compress import METHODS, Message, compress, compression_ratio, pack_signs, unpack_signs
from bnnctl.distributed.hooks import HookState, compression_hook

__all__ = [
    "METHODS",
    "HookState",
    "Message",
    "compress",
    "compression_hook",
    "compression_ratio",
    "pack_signs",
    "unpack_signs",
]
