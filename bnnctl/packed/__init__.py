"""Packed binary inference: +-1 tensors as bits, XNOR-popcount products, and a trained run as a packed model.

The numba kernels (bit layout, XNOR-popcount, Hadamard block product) are
``bnnctl.kernels``'; ``bits`` and ``kernels`` here only re-export them for old
imports. ``hadamard`` (the block product with the binarizer's scales),
``layers`` (packed layers), ``thresholds`` (batch norm folded into integer
thresholds), ``float_ops`` (what stays float), ``export`` (``pack_model``),
``model`` (``PackedModel`` and its file), ``runs`` (``bnnctl export`` and
``bnnctl eval --packed``). Imported on demand: numba loads only when used.
"""
