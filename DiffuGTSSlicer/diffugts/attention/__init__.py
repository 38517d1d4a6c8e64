"""Anomaly-aware open-vocabulary attention: trainable heads over frozen diffusion features and text.

Modules: ``heads`` (the trainable projections), ``features`` and ``encode`` (frozen inputs on the latent
grid), ``infer`` (maps on the input grid), ``train`` and ``config`` (training), ``checkpoint`` (files).
The package itself imports nothing heavy, so the command line starts fast.
"""
