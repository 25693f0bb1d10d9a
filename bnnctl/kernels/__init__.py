"""Every numba / LLVM kernel of bnnctl, at the bottom of the layers: it imports nothing else of bnnctl.

``intrinsics`` (LLVM popcount, scalar and vector, and float32 fma, defined
once), ``threads`` (the one thread policy: numba follows torch; every parallel
kernel is made by ``threads.parallel_kernel``), ``bits`` (the bit layout and
every packer of it; weight panels), ``xnor`` (the XNOR-popcount GEMM),
``hadamard`` (the Hadamard block product), ``im2col`` (convolution windows on
words), ``epilogue`` (integer thresholds -> the next layer's bits),
``compress`` (one-pass gradient messages), ``adam`` (the fused Adam + clip
step), ``naive`` (the textbook float GEMM baseline). Modules are imported on
demand: numba loads only when one is used.
"""
