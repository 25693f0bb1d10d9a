"""Networks: binarizers (objects), binary layers, the studies' models, losses, size accounting."""

from bnnctl.nn.binarize import BINARIZERS, IDENTITY, Binarizer, OutputSet, make_binarizer, sign
from bnnctl.nn.layers import (
    Binarize,
    BinaryConv2d,
    BinaryLinear,
    EvalDropout,
    binary_layers,
    clippable_parameters,
    quantized_parameters,
)
from bnnctl.nn.losses import LOSSES, get_loss
from bnnctl.nn.models import ARCHITECTURES, build_model, check_model_names
from bnnctl.nn.size import layer_sizes, model_size_bytes

__all__ = [
    "ARCHITECTURES",
    "BINARIZERS",
    "IDENTITY",
    "LOSSES",
    "Binarize",
    "Binarizer",
    "BinaryConv2d",
    "BinaryLinear",
    "EvalDropout",
    "OutputSet",
    "binary_layers",
    "build_model",
    "check_model_names",
    "clippable_parameters",
    "get_loss",
    "layer_sizes",
    "make_binarizer",
    "model_size_bytes",
    "quantized_parameters",
    "sign",
]
