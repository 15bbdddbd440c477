"""BatchNormalization statistics recomputed on training images (docs/paper.md: with few steps per epoch the
moving averages lag far behind the weights; a run at 100 % training accuracy scored 41 % in inference mode
until its statistics were recomputed).
"""

from __future__ import annotations

import keras
import numpy as np

STCM_FIRST_LAYER = "stcm_stem_conv"  # mans.network.model's name for the STCM's first layer
BN_SAMPLES = 4096  # training samples used to recompute BatchNormalization statistics (ours)


def bn_rows(rows: np.ndarray, limit: int = BN_SAMPLES, seed: int = 0) -> np.ndarray:
    """At most `limit` of `rows`, a seeded random subset kept in ascending order (all of them when fewer)."""
    rows = np.asarray(rows)
    if len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))


def recompute_bn_statistics(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> int:
    """Set the moving mean and variance of every BatchNormalization layer to its population statistics.

    The layers are visited in graph order; each one's inputs are computed in inference mode (the earlier
    layers already updated), and its moving mean / variance become the exact mean / biased variance of
    those inputs over `images` (what a BN layer normalises with during training). The STCM's input (the
    TARM output, which holds no BN) is computed once; training-only augmentation layers are the identity.

    Args:
        model: a functional model; BatchNormalization layers nested in sub-models are not visited.
        images: (n, S, S, 3) training images.
        batch_size: images per forward pass.

    Returns:
        The number of BatchNormalization layers updated.
    """
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    names = {layer.name for layer in model.layers}
    start = model.get_layer(STCM_FIRST_LAYER).input if STCM_FIRST_LAYER in names else model.input
    features = keras.Model(model.input, start).predict(images, batch_size=batch_size, verbose=0)
    for layer in layers:
        probe = keras.Model(start, layer.input)
        total = total_sq = 0.0
        count = 0
        for begin in range(0, len(features), batch_size):
            values = keras.ops.convert_to_numpy(probe(features[begin : begin + batch_size], training=False))
            values = values.astype(np.float64)
            values = values.reshape(-1, values.shape[-1])  # (batch * positions, channels)
            total = total + values.sum(0)
            total_sq = total_sq + (values**2).sum(0)
            count += len(values)
        mean = total / count
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(np.maximum(total_sq / count - mean**2, 0.0).astype(np.float32))
    return len(layers)
