"""A trained float-simulated BNN -> a packed model (ops on bits), its file, and its size.

``pack_model`` walks the network in the order it runs. A sign of an exactly
+-1 binarizer turns the activations into ``Bits``; a binary layer that gets
bits runs as ``XnorLinear`` / ``XnorConv2d``; the float ops between it and the
next sign fold into integer thresholds (``thresholds.fold``). Everything else
(the first layer on real pixels, batch norm before a float op, the last
layer's batch norm and head) stays a float op that calls the same PyTorch
function as the float model. The packed model's outputs are therefore the
float model's, bit for bit, and so are its predictions.

A model is refused, naming the layer, when a layer's weights or activations
are quantized but not exactly +-1 (Hadamard, ternary, a sign with sign(0) = 0),
or when dropout stays on at evaluation.

The packed model and its file are ``model``'s (``PackedModel``,
``save_packed``, ``load_packed``; re-exported here for old imports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import torch
import torch.nn as nn

from bnnctl.errors import PackError
from bnnctl.nn.binarize import Binarizer, sign
from bnnctl.nn.layers import Binarize, BinaryConv2d, BinaryLinear, EvalDropout, _BinaryMixin
from bnnctl.packed import float_ops as fo
from bnnctl.packed.layers import XnorConv2d, XnorLinear
from bnnctl.packed.model import FORMAT, PackedModel, load_packed, save_packed
from bnnctl.packed.thresholds import NotAStep, fold

__all__ = ["FORMAT", "PackedModel", "describe", "load_packed", "pack_model", "save_packed"]
FOLDABLE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.Hardtanh, nn.ReLU, nn.Identity, nn.Dropout)  # per unit, monotone


@dataclass
class Event:
    """One step of the network in the order it runs: a module, or the sign a layer applies to its input."""

    name: str
    module: nn.Module
    binarizer: Binarizer | None = None  # set for a sign
    shape: tuple[int, ...] = ()  # the input's shape (from a forward pass)

    @property
    def is_sign(self) -> bool:
        return self.binarizer is not None


def describe(name: str, module: nn.Module) -> str:
    """'layer 3 (BinaryLinear 4096->4096)': how errors and summaries name a module."""
    if isinstance(module, nn.Linear):
        what = f"{type(module).__name__} {module.in_features}->{module.out_features}"
    elif isinstance(module, nn.Conv2d):
        what = f"{type(module).__name__} {module.in_channels}->{module.out_channels} {'x'.join(map(str, module.kernel_size))}"
    else:
        what = type(module).__name__
    return f"layer {name} ({what})"


def _events(model: nn.Sequential, input_shape: tuple[int, ...]) -> list[Event]:
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        child.register_forward_pre_hook(lambda _m, args, name=name: shapes.__setitem__(name, tuple(args[0].shape)))
        for name, child in model.named_children()
    ]
    try:
        with torch.no_grad():
            model(torch.zeros((2, *input_shape)))
    finally:
        for hook in hooks:
            hook.remove()
    events = []
    for name, child in model.named_children():
        shape = shapes.get(name, ())
        if isinstance(child, Binarize):
            if child.binarizer.quantizes:
                events.append(Event(name, child, child.binarizer, shape))
            continue
        if isinstance(child, _BinaryMixin) and child.input_binarizer.quantizes:
            events.append(Event(name, child, child.input_binarizer, shape))
        events.append(Event(name, child, None, shape))
    return events


def _check_sign(event: Event) -> None:
    """The binarizer is exactly +-1 and at evaluation is sign with sign(0) = +1 (what ``Bits.from_float`` packs)."""
    b = event.binarizer
    assert b is not None
    if not b.exact_binary:
        raise PackError(
            f"{describe(event.name, event.module)}: its activations {b!r} are not exactly +-1 ({b.output}); "
            "packed inference needs +-1 activations"
        )
    probe = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 2.0])
    if not torch.equal(b(probe, False), sign(probe)):
        raise PackError(f"{describe(event.name, event.module)}: {b!r} at evaluation is not sign(x) with sign(0) = +1")


def _check_weights(name: str, layer: _BinaryMixin) -> None:
    b = layer.weight_binarizer
    if b.quantizes and not b.exact_binary:
        raise PackError(
            f"{describe(name, layer)}: its weights {b!r} are not exactly +-1 ({b.output}); "
            "packed inference needs +-1 weights (or full-precision ones)"
        )


@overload
def _array(t: torch.Tensor) -> np.ndarray: ...
@overload
def _array(t: None) -> None: ...
def _array(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().float().numpy().copy()


def _float_op(event: Event) -> fo.FloatOp | None:
    """The float op that does what ``event.module`` does at evaluation (None: nothing to do)."""
    m, where = event.module, describe(event.name, event.module)
    if isinstance(m, (nn.Dropout, nn.Identity)):
        return None
    if isinstance(m, (BinaryLinear, BinaryConv2d)):
        binary = m.weight_binarizer.exact_binary
        weight = fo.StoredWeight.of(m.binary_weight(), binary)
        bias = m.binary_bias()  # None exactly when the layer has no bias
        arrays = {**weight.arrays("weight"), **({} if bias is None else {"bias": _array(bias)})}
        if isinstance(m, BinaryLinear):
            return fo.Linear({"weight": weight.attrs(), "bias_after_product": True}, arrays)
        _check_conv(where, m)
        return fo.Conv2d({"weight": weight.attrs(), "stride": list(m.stride), "padding": list(m.padding)}, arrays)
    if isinstance(m, nn.Linear):
        weight = fo.StoredWeight.of(m.weight, binary=False)
        arrays = {**weight.arrays("weight"), **({} if m.bias is None else {"bias": _array(m.bias)})}
        return fo.Linear({"weight": weight.attrs(), "bias_after_product": False}, arrays)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.running_mean is None or m.running_var is None:
            raise PackError(f"{where}: batch norm without running statistics has no evaluation form")
        arrays = {"running_mean": _array(m.running_mean), "running_var": _array(m.running_var)}
        if m.affine:
            arrays |= {"weight": _array(m.weight), "bias": _array(m.bias)}
        return fo.BatchNorm({"eps": float(m.eps)}, arrays)
    if isinstance(m, nn.MaxPool2d):
        pairs = {k: getattr(m, k) for k in ("kernel_size", "stride", "padding", "dilation")}
        attrs = {k.split("_")[0]: v for k, v in pairs.items()}
        return fo.MaxPool2d({**attrs, "ceil_mode": bool(m.ceil_mode)})
    if isinstance(m, nn.Hardtanh):
        return fo.Pointwise({"fn": "hardtanh", "min_val": float(m.min_val), "max_val": float(m.max_val)})
    if isinstance(m, nn.ReLU):
        return fo.Pointwise({"fn": "relu"})
    if isinstance(m, nn.Softmax):
        return fo.Pointwise({"fn": "softmax", "dim": m.dim})
    if isinstance(m, nn.Flatten):
        return fo.Pointwise({"fn": "flatten", "start_dim": m.start_dim, "end_dim": m.end_dim})
    raise PackError(f"{where}: no packed equivalent for {type(m).__name__}")


def _check_conv(where: str, m: nn.Conv2d) -> None:
    if m.groups != 1 or tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise PackError(f"{where}: only zero-padded, ungrouped, undilated convolutions are packed")


def _int_pool(events: list[Event], j: int) -> int:
    """The kernel of a max-pool at ``events[j]`` that can run on integers (kernel = stride, no padding), else 0."""
    if j >= len(events) or events[j].is_sign or not isinstance(events[j].module, nn.MaxPool2d):
        return 0
    m = events[j].module
    k, s = m.kernel_size, m.stride
    if (
        isinstance(k, int)
        and s in (k, (k, k))
        and m.padding in (0, (0, 0))
        and m.dilation in (1, (1, 1))
        and not m.ceil_mode
    ):
        return k
    return 0


def _chain(modules: list[nn.Module], sign_binarizer: Binarizer, spatial: bool):
    """x (R, C) -> the sign of the float ops applied as the model applies them (C per-unit, (R, C, 1, 1) for 2-D BN)."""

    def run(x: torch.Tensor) -> torch.Tensor:
        y = x[:, :, None, None] if spatial else x
        for module in modules:
            y = module(y)
        return sign_binarizer(y.reshape(x.shape), False)

    return run


class _Packer:
    """The walk over a model's events that builds its ops (see the module docstring)."""

    def __init__(self, events: list[Event], xnor: bool):
        self.events = events
        self.xnor = xnor
        self.ops: list[Any] = []
        self.layout: tuple[int, int] | None = None  # (positions, channels) of the current Bits, None while float
        self.folded = 0

    def run(self) -> list[Any]:
        i = 0
        while i < len(self.events):
            i = self.step(i)
        return self.ops

    def to_float(self) -> None:
        if self.layout is not None:
            self.ops.append(fo.Unpack())
            self.layout = None

    def step(self, i: int) -> int:
        event = self.events[i]
        if event.is_sign:
            _check_sign(event)
            if not self.xnor:
                self.ops.append(fo.Pointwise({"fn": "sign"}))
            elif self.layout is None:  # the sign of +-1 values is themselves
                self.ops.append(fo.Sign())
                shape = event.shape
                self.layout = (int(np.prod(shape[2:])), shape[1]) if len(shape) == 4 else (1, shape[1])
            return i + 1
        m = event.module
        if isinstance(m, _BinaryMixin):
            _check_weights(event.name, m)
            if self.layout is not None and m.weight_binarizer.exact_binary:
                return self.packed_layer(i)
        if self.layout is not None:
            if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
                self.ops.append(fo.FlattenBits())
                return i + 1
            if isinstance(m, nn.Dropout):
                return i + 1
            self.to_float()
        op = _float_op(event)
        if op is not None:
            self.ops.append(op)
        return i + 1

    def packed_layer(self, i: int) -> int:
        """A binary layer on bits, with the thresholds of the ops up to the next sign when they fold."""
        assert self.layout is not None  # step() packs a layer only while the activations are bits
        event, (positions, channels) = self.events[i], self.layout
        m = event.module
        assert isinstance(m, (BinaryLinear, BinaryConv2d))  # step() sends a binary layer here
        bias = None if m.bias is None else _array(m.binary_bias())
        signs = m.binary_weight().detach() > 0
        conv = isinstance(m, BinaryConv2d)
        j = i + 1
        pool = _int_pool(self.events, j) if conv else 0
        j += bool(pool)
        chain = []
        while j < len(self.events) and not self.events[j].is_sign and isinstance(self.events[j].module, FOLDABLE):
            chain.append(self.events[j].module)
            j += 1
        thresholds = None
        units = m.out_channels if isinstance(m, BinaryConv2d) else m.out_features
        k = m.in_channels * m.kernel_size[0] * m.kernel_size[1] if isinstance(m, BinaryConv2d) else m.in_features
        sign_binarizer = self.events[j].binarizer if j < len(self.events) else None
        if sign_binarizer is not None:  # the next event is a sign
            _check_sign(self.events[j])
            try:
                thresholds = fold(_chain(chain, sign_binarizer, conv), k, bias, units)
            except NotAStep:
                thresholds = None  # exact all the same: the float epilogue below runs the ops as the model does
        if thresholds is None:
            pool, j = 0, i + 1
        op: XnorConv2d | XnorLinear
        if isinstance(m, BinaryConv2d):
            _check_conv(describe(event.name, m), m)
            if m.stride[0] != m.stride[1] or m.padding[0] != m.padding[1]:
                raise PackError(
                    f"{describe(event.name, m)}: only equal strides and paddings in both directions are packed"
                )
            shape = event.shape
            op = XnorConv2d.from_signs(
                signs.numpy(), stride=m.stride[0], padding=m.padding[0], in_size=(shape[2], shape[3]),
                pool=pool, bias=bias, thresholds=thresholds,
            )  # fmt: skip
            out_h, out_w = op.out_size
            next_layout = (out_h * out_w, units)
        else:
            if positions * channels != m.in_features:
                raise PackError(
                    f"{describe(event.name, m)}: gets {positions} x {channels} bits, expects {m.in_features}"
                )
            op = XnorLinear.from_signs(signs.numpy(), positions, channels, bias=bias, thresholds=thresholds)
            next_layout = (1, units)
        self.ops.append(op)
        if thresholds is None:
            self.layout = None
            return i + 1
        self.folded += 1
        self.layout = next_layout
        return j + 1  # past the sign


def pack_model(model: nn.Module, input_shape: tuple[int, ...], xnor: bool = True) -> PackedModel:
    """The packed form of a trained model (evaluation mode); PackError names a layer that cannot be packed.

    ``xnor=False`` keeps every layer a float op (its +-1 weights unpacked once,
    the signs as float +-1): the float model without re-binarizing its latent
    weights on each call, the fair float baseline of ``bnnctl bench infer``.
    """
    if not isinstance(model, nn.Sequential):
        raise PackError(f"packed export handles nn.Sequential models, not {type(model).__name__}")
    for name, module in model.named_modules():
        if isinstance(module, EvalDropout):
            raise PackError(
                f"{describe(name, module)}: dropout stays on at evaluation (model.dropout_in_eval), so predictions are random"
            )
    model = model.eval()
    with torch.no_grad():
        packer = _Packer(_events(model, tuple(input_shape)), xnor)
        ops = packer.run()
    if xnor and not any(isinstance(op, (XnorLinear, XnorConv2d)) for op in ops):
        raise PackError("the model has no layer with +-1 weights and +-1 inputs: nothing to pack (a float model?)")
    return PackedModel(ops, {"input_shape": list(input_shape), "thresholded_layers": packer.folded})
