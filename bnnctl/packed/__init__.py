"""Packed binary inference: +-1 tensors as bits, XNOR-popcount products, and a trained run as a packed model.

``bits`` (the bit layout), ``kernels`` (numba XNOR-popcount), ``hadamard``
(the block product), ``layers`` (packed layers), ``thresholds`` (batch norm
folded into integer thresholds), ``float_ops`` (what stays float),
``export`` (``pack_model`` and the file), ``runs`` (``bnnctl export`` and
``bnnctl eval --packed``). Imported on demand: numba loads only when used.
"""
