"""Binarizers as registered objects: the forward map, the surrogate gradient, and what they are.

A binarizer maps a latent real tensor to what a layer computes with. Training
needs a gradient where the forward map has none (sign is flat almost
everywhere), so each binarizer pairs its forward map with a surrogate
gradient. The rest of bnnctl never compares names: layers, weight clipping,
the size report and packed export ask the object

* ``output``: the set its values lie in (``OutputSet``): exactly +-1, a scaled
  +-1, ternary, or real. Only ``BINARY`` may be packed into bits;
* ``bits``: storage per element once deployed (1 for +-1, 32 for real);
* ``clips_latent``: whether latent weights feeding it are kept in [-1, 1]
  when ``train.weight_clip`` is on (the BNN paper's rule for sign);
* ``params``: its parameters, as the config gives them (``{name, params}``).

Modelled on larq's quantizers (one small class per binarizer, a registry by
name, one contract test over the registry). ``sign`` is the pure forward map
with sign(0) = +1; every binarizer that uses it with a straight-through
estimator says so in its name (``ste_sign``).

``maps`` holds the tensor functions, ``base`` the interface, ``registry`` the
names, ``binarizers`` the classes (importing it fills the registry).
"""

from bnnctl.nn.binarize.base import Binarizer, OutputSet
from bnnctl.nn.binarize.binarizers import IDENTITY, Hadamard, Identity, SteSign, StochasticSign, Ternary
from bnnctl.nn.binarize.maps import block_mean_abs, hard_sigmoid, sign, sign_with_zero, ternarize
from bnnctl.nn.binarize.registry import BINARIZERS, default_params, make_binarizer, register

__all__ = [
    "BINARIZERS",
    "IDENTITY",
    "Binarizer",
    "Hadamard",
    "Identity",
    "OutputSet",
    "SteSign",
    "StochasticSign",
    "Ternary",
    "block_mean_abs",
    "default_params",
    "hard_sigmoid",
    "make_binarizer",
    "register",
    "sign",
    "sign_with_zero",
    "ternarize",
]
