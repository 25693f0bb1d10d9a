"""The geometry of binarization (Anderson & Berg 2018): one study per module.

``random_angles`` (random vectors: sign, ternary, Hadamard, rotated basis), ``weight_angles``
(a trained run's weight vectors), ``dot_products`` (a.W_b vs a.W_c per layer),
``first_layer`` (PCA of image patches), ``filters`` (unique binary filters),
``distributions`` (latent vs binarized weight values, Hadamard vs sign);
``studies`` turns each into a ``StudyOutput`` that ``bnnctl.api.run_study``
writes, with ``figures`` and ``output`` shared.
"""
