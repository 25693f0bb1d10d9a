"""The studies' networks, built from typed config.

All three MLP presets (``blu_mlp``, ``bnn_mlp``, ``mlp_float``) share one
builder: what differs between the papers (batch norm, dropout, loss, first and
last layer precision, binarizers) is configuration, so a reader can diff the
YAML files rather than the code. Each hidden block is

    BinaryLinear -> [BatchNorm] -> [nonlinearity] -> activation binarizer -> [Dropout]

which is the Theano BNN order (dense -> BN -> sign -> dropout): dropout acts
on the binary activations, as in the paper's MNIST MLP.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from bnnctl.binarize import is_binary
from bnnctl.errors import ConfigError
from bnnctl.layers import Binarize, BinaryLinear, binary_layers

if TYPE_CHECKING:
    from bnnctl.config import BinarizeConfig, ModelConfig

NONLINEARITIES: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "hardtanh": nn.Hardtanh,
    "relu": nn.ReLU,
}


def _nonlinearity(name: str) -> nn.Module:
    try:
        return NONLINEARITIES[name]()
    except KeyError:
        raise ConfigError(f"unknown model.nonlinearity {name!r} (known: {', '.join(NONLINEARITIES)})") from None


def _layer_precision(precision: str, binarizer: str, what: str) -> str:
    """The binarizer a first/last layer uses: the run's binarizer, or identity for 'float'."""
    if precision == "binary":
        return binarizer
    if precision in ("float", "real"):
        return "identity"
    raise ConfigError(f"{what} must be 'binary' or 'float', got {precision!r}")


def build_mlp(m: ModelConfig, b: BinarizeConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """An MLP with ``m.depth`` hidden layers of ``m.width`` units."""
    in_features = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    if m.input_dropout > 0:
        layers.append(nn.Dropout(m.input_dropout))
    widths = [in_features] + [m.width] * m.depth
    for i in range(m.depth):
        first = i == 0
        weights = _layer_precision(m.first_layer_weights, b.weights, "model.first_layer_weights") if first else b.weights
        inputs = _layer_precision(m.first_layer_input, b.activations, "model.first_layer_input") if first else "identity"
        layers.append(
            BinaryLinear(
                widths[i], widths[i + 1], bias=m.bias,
                weight_binarizer=weights, input_binarizer=inputs,
                binarize_bias=m.binarize_bias and is_binary(weights),
            )
        )
        if m.batch_norm:
            layers.append(nn.BatchNorm1d(widths[i + 1], eps=m.bn_eps, momentum=m.bn_momentum))
        if m.nonlinearity != "none":
            layers.append(_nonlinearity(m.nonlinearity))
        if is_binary(b.activations):
            layers.append(Binarize(b.activations))
        if m.dropout > 0:
            layers.append(nn.Dropout(m.dropout))
    last = _layer_precision(m.last_layer_weights, b.weights, "model.last_layer_weights")
    layers.append(
        BinaryLinear(
            widths[-1], num_classes, bias=m.bias, weight_binarizer=last,
            binarize_bias=m.binarize_bias and is_binary(last),
        )
    )
    if m.last_batch_norm:
        layers.append(nn.BatchNorm1d(num_classes, eps=m.bn_eps, momentum=m.bn_momentum))
    return nn.Sequential(*layers)


ARCHITECTURES = {"mlp": build_mlp}


def _init_weights(model: nn.Module, init: str) -> None:
    """'torch' keeps PyTorch's default init; 'uniform' draws binary layers' latent weights from U(-1, 1) (Theano BNN)."""
    if init == "torch":
        return
    if init != "uniform":
        raise ConfigError(f"unknown model.init {init!r} (known: torch, uniform)")
    with torch.no_grad():
        for layer in binary_layers(model):
            layer.weight.uniform_(-1.0, 1.0)


def build_model(m: ModelConfig, b: BinarizeConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The network that ``m`` describes, with its latent weights initialised."""
    try:
        builder = ARCHITECTURES[m.arch]
    except KeyError:
        raise ConfigError(f"unknown model.arch {m.arch!r} (known: {', '.join(ARCHITECTURES)})") from None
    model = builder(m, b, input_shape, num_classes)
    _init_weights(model, m.init)
    return model


def square_hinge_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean(max(0, 1 - t * y)^2) with one-hot targets mapped to +-1 (the BNN paper's L2-SVM output)."""
    t = F.one_hot(target, logits.shape[1]).to(logits.dtype) * 2 - 1
    return (1 - t * logits).clamp(min=0).pow(2).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "square_hinge": square_hinge_loss,
}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown model.loss {name!r} (known: {', '.join(LOSSES)})") from None


def model_size_bytes(model: nn.Module) -> dict[str, float]:
    """Storage of the deployed model: 1 bit per binary weight, 32 bits per other parameter or buffer."""
    binary_ids = {id(layer.weight) for layer in binary_layers(model)}
    binary = sum(p.numel() for p in model.parameters() if id(p) in binary_ids)
    real = sum(p.numel() for p in model.parameters() if id(p) not in binary_ids)
    real += sum(b.numel() for b in model.buffers() if b.dtype.is_floating_point)
    deployed = binary / 8 + real * 4
    float32 = (binary + real) * 4
    return {
        "params": binary + real,
        "binary_params": binary,
        "bytes_float32": float32,
        "bytes_deployed": deployed,
        "compression": float32 / deployed if deployed else 1.0,
    }
