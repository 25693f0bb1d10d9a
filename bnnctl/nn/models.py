"""The studies' networks, built from typed config: the MLPs and the BNN paper's CIFAR-10 CNN.

All three MLP presets (``blu_mlp``, ``bnn_mlp``, ``mlp_float``) share one
builder: what differs between the papers (batch norm, dropout, loss, first and
last layer precision, binarizers) is configuration, so a reader can diff the
YAML files rather than the code. Each hidden block is

    BinaryLinear -> [BatchNorm] -> [nonlinearity] -> activation binarizer -> [Dropout]

which is the Theano BNN order (dense -> BN -> sign -> dropout): dropout acts
on the binary activations, as in the paper's MNIST MLP. ``model.dropout_at=
before_sign`` is the ablation report's order (BN -> dropout, the sign done by
the next layer on its input), and ``blu_report`` adds the rest of that code's
network: batch norm of the input, a float Linear(10, 10) and a softmax.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn as nn

from bnnctl.errors import ConfigError
from bnnctl.nn.binarize import IDENTITY, Binarizer, make_binarizer
from bnnctl.nn.layers import Binarize, BinaryConv2d, BinaryLinear, EvalDropout, quantized_layers
from bnnctl.nn.losses import LOSSES

if TYPE_CHECKING:
    from bnnctl.config.schema import BinarizeConfig, ModelConfig

NONLINEARITIES: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "hardtanh": nn.Hardtanh,
    "relu": nn.ReLU,
}


def _layer_binarizer(precision: str, binarizer: Binarizer) -> Binarizer:
    """A first/last layer's weight binarizer: the run's ('binary') or the identity ('float')."""
    return binarizer if precision == "binary" else IDENTITY


def _sign_in_next_layer(m: ModelConfig) -> bool:
    """Whether a hidden activation's sign is the next layer's input binarizer (else a Binarize module).

    ``before_sign`` needs it there (dropout comes between batch norm and the
    sign). Without dropout there is nothing to place, and the report's
    real-operand backward (``linear_backward=real``) needs the layer to see its
    input before the sign, so the sign goes there too: ``dropout_at`` then
    builds the same network either way (``inert_model_keys``).
    """
    return m.dropout_at == "before_sign" or (m.dropout == 0 and m.linear_backward == "real")


def inert_model_keys(model: dict[str, Any]) -> list[str]:
    """``model.*`` keys (of a config as a plain dict) that build the same network as their defaults would.

    Without dropout, where it would sit and whether it stays on at evaluation
    change nothing (see ``_sign_in_next_layer``); runs that differ only there
    share an id, and a grid trains them once.
    """
    return ["dropout_at", "dropout_in_eval"] if model.get("dropout") == 0 else []


def _dropout(m: ModelConfig) -> list[nn.Module]:
    if m.dropout == 0:
        return []
    return [EvalDropout(m.dropout) if m.dropout_in_eval else nn.Dropout(m.dropout)]


def _hidden_block(m: ModelConfig, layer: BinaryLinear, activations: Binarizer) -> list[nn.Module]:
    """layer -> [BN] -> [nonlinearity], then the activation sign and dropout in ``m.dropout_at``'s order.

    Where the sign belongs to the next layer (``_sign_in_next_layer``) the
    block ends with the dropout; otherwise with a Binarize module, then dropout.
    """
    block: list[nn.Module] = [layer]
    if m.batch_norm:
        block.append(nn.BatchNorm1d(m.width, eps=m.bn_eps, momentum=m.bn_momentum))
    if m.nonlinearity != "none":
        block.append(NONLINEARITIES[m.nonlinearity]())
    if _sign_in_next_layer(m):
        return block + _dropout(m)
    if activations.quantizes:
        block.append(Binarize(activations))
    return block + _dropout(m)


def _output_head(m: ModelConfig, num_classes: int) -> list[nn.Module]:
    """[BN] -> [float Linear(C, C)] -> [Softmax]: what follows the last binary layer."""
    head: list[nn.Module] = []
    if m.last_batch_norm:
        head.append(nn.BatchNorm1d(num_classes, eps=m.bn_eps, momentum=m.bn_momentum))
    if m.float_head:
        head.append(nn.Linear(num_classes, num_classes))
    if m.output == "softmax_twice":
        head.append(nn.Softmax(dim=1))  # cross-entropy then takes a softmax of these probabilities
    return head


def build_mlp(
    m: ModelConfig, weights: Binarizer, activations: Binarizer, input_shape: tuple[int, ...], num_classes: int
) -> nn.Sequential:
    """An MLP with ``m.depth`` hidden layers of ``m.width`` units. Shapes: (N, C, H, W) -> (N, num_classes)."""
    in_features = math.prod(input_shape)
    layers: list[nn.Module] = [nn.Flatten()]
    if m.input_batch_norm:
        layers.append(nn.BatchNorm1d(in_features, eps=m.bn_eps, momentum=m.bn_momentum))
    if m.input_dropout > 0:
        layers.append(nn.Dropout(m.input_dropout))
    sign_in_layer = _sign_in_next_layer(m)

    def linear(i: int, n_in: int, n_out: int, layer_weights: Binarizer) -> BinaryLinear:
        first = i == 0
        takes_sign = m.first_layer_input == "binary" if first else sign_in_layer
        return BinaryLinear(
            n_in,
            n_out,
            bias=m.bias,
            weight_binarizer=layer_weights,
            input_binarizer=activations if takes_sign else IDENTITY,
            binarize_bias=m.binarize_bias,
            real_backward=m.linear_backward == "real",
        )

    for i in range(m.depth):
        layer_weights = _layer_binarizer(m.first_layer_weights, weights) if i == 0 else weights
        layer = linear(i, in_features if i == 0 else m.width, m.width, layer_weights)
        layers += _hidden_block(m, layer, activations)
    layers.append(linear(m.depth, m.width, num_classes, _layer_binarizer(m.last_layer_weights, weights)))
    return nn.Sequential(*layers, *_output_head(m, num_classes))


# The BNN paper's CIFAR-10 network (Courbariaux, Hubara et al. 2016; the net Anderson & Berg study):
# (2 x 128C3) - MP2 - (2 x 256C3) - MP2 - (2 x 512C3) - MP2 - 2 x 1024FC - 10, each scaled by model.width_mult.
CNN_CONVS = ((128, False), (128, True), (256, False), (256, True), (512, False), (512, True))  # (channels, pool after)
CNN_FCS = (1024, 1024)


def _scaled(width: int, mult: float) -> int:
    return max(1, round(width * mult))


def build_bnn_cnn(
    m: ModelConfig, weights: Binarizer, activations: Binarizer, input_shape: tuple[int, ...], num_classes: int
) -> nn.Sequential:
    """conv -> [max-pool] -> batch norm -> sign per layer (the authors' order), first-layer input real.

    Shapes: (N, C, H, W) -> ... -> (N, num_classes). Runs on 3 x 32 x 32 (CIFAR-10)
    and 1 x 28 x 28 (MNIST, Fashion-MNIST: 28 -> 14 -> 7 -> 3 after the pools).
    """
    channels, height, width = input_shape
    layers: list[nn.Module] = []
    for i, (out, pool) in enumerate(CNN_CONVS):
        out = _scaled(out, m.width_mult)
        layer_weights = _layer_binarizer(m.first_layer_weights, weights) if i == 0 else weights
        inputs = activations if i == 0 and m.first_layer_input == "binary" else IDENTITY
        layers.append(
            BinaryConv2d(
                channels,
                out,
                3,
                padding=1,
                bias=m.bias,
                weight_binarizer=layer_weights,
                input_binarizer=inputs,
                binarize_bias=m.binarize_bias,
            )
        )
        if pool:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        if m.batch_norm:
            layers.append(nn.BatchNorm2d(out, eps=m.bn_eps, momentum=m.bn_momentum))
        layers.append(Binarize(activations))
        channels = out
    layers.append(nn.Flatten())
    features = channels * height * width
    for fc in CNN_FCS:
        fc = _scaled(fc, m.width_mult)
        layers.append(BinaryLinear(features, fc, bias=m.bias, weight_binarizer=weights, binarize_bias=m.binarize_bias))
        if m.batch_norm:
            layers.append(nn.BatchNorm1d(fc, eps=m.bn_eps, momentum=m.bn_momentum))
        layers.append(Binarize(activations))
        features = fc
    last = _layer_binarizer(m.last_layer_weights, weights)
    layers.append(
        BinaryLinear(features, num_classes, bias=m.bias, weight_binarizer=last, binarize_bias=m.binarize_bias)
    )
    return nn.Sequential(*layers, *_output_head(m, num_classes))


ARCHITECTURES = {"mlp": build_mlp, "bnn_cnn": build_bnn_cnn}


def check_model_names(m: ModelConfig) -> None:
    """The registries' names in ``model.*``: a typo fails before any data loads."""
    for value, known, key in (
        (m.arch, ARCHITECTURES, "model.arch"),
        (m.loss, LOSSES, "model.loss"),
        (m.nonlinearity, NONLINEARITIES, "model.nonlinearity"),
    ):
        if value not in known:
            raise ConfigError(f"unknown {key} {value!r} (known: {', '.join(known)})")


def _init_weights(model: nn.Module, init: str) -> None:
    """'torch' keeps PyTorch's default init; 'uniform' draws quantized layers' latent weights from U(-1, 1) (Theano BNN)."""
    if init == "uniform":
        with torch.no_grad():
            for layer in quantized_layers(model):
                layer.weight.uniform_(-1.0, 1.0)


def _uses(model: nn.Module, binarizer: Binarizer) -> list[tuple[object, str]]:
    """(owner, attribute) of every place ``binarizer`` (this very object) is applied, in forward order."""
    places: list[tuple[object, str]] = []
    for module in model.modules():  # a Sequential lists its children in the order they run
        if isinstance(module, Binarize) and module.binarizer is binarizer:
            places.append((module, "binarizer"))
        for attr in ("input_binarizer", "weight_binarizer"):  # a layer binarizes its input, then its weights
            if getattr(module, attr, None) is binarizer:
                places.append((module, attr))
    return places


def assign_per_layer(model: nn.Module, binarizers: dict[str, Binarizer]) -> None:
    """Give each layer its own binarizer where a parameter is per layer (``hadamard`` with ``beta: [16, 8]``).

    ``binarizers`` maps a config key to the object the builder used. The
    weight binarizer is counted over the layers with binarized weights, the
    activation binarizer over every place it binarizes (hidden activations,
    a binary first layer's input), each in forward order.
    """
    for key, binarizer in binarizers.items():
        places = _uses(model, binarizer)
        for i, (owner, attr) in enumerate(places):
            try:
                setattr(owner, attr, binarizer.for_layer(i, len(places)))
            except ValueError as exc:
                raise ConfigError(f"{key}.params: {exc}") from None


BYTES_PER_PARAMETER = 16  # float32 weight, gradient and Adam's two moments


def physical_memory_bytes() -> int | None:
    """This machine's RAM, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def check_model_fits(
    m: ModelConfig, weights: Binarizer, activations: Binarizer, shape: tuple[int, ...], classes: int
) -> None:
    """Refuse a model whose training state cannot fit in RAM, before allocating it (counted on the meta device).

    ``model.width=100000000`` would otherwise ask the allocator for hundreds
    of GB and die in it; this names the key instead.
    """
    with torch.device("meta"):
        params = sum(p.numel() for p in ARCHITECTURES[m.arch](m, weights, activations, shape, classes).parameters())
    ram = physical_memory_bytes()
    if ram is not None and params * BYTES_PER_PARAMETER > ram:
        key = "model.width_mult" if m.arch == "bnn_cnn" else "model.width / model.depth"
        raise ConfigError(
            f"{key}: the model has {params:,} parameters; training them needs about "
            f"{params * BYTES_PER_PARAMETER / 1e9:.0f} GB (weights, gradients, Adam), more than this machine's "
            f"{ram / 1e9:.0f} GB"
        )


def build_model(m: ModelConfig, b: BinarizeConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The network that ``m`` describes, with its latent weights initialised."""
    check_model_names(m)
    weights = make_binarizer(b.weights, "binarize.weights")
    activations = make_binarizer(b.activations, "binarize.activations")
    check_model_fits(m, weights, activations, input_shape, num_classes)
    model = ARCHITECTURES[m.arch](m, weights, activations, input_shape, num_classes)
    assign_per_layer(model, {"binarize.weights": weights, "binarize.activations": activations})
    _init_weights(model, m.init)
    return model
