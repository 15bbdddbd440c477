"""Training-only augmentation of the normalised skeleton image, as Keras layers at the model's input.

The input is the S x S x 3 image of `mans.preprocessing.preprocess`: axes (time, joint column, coordinate). After the
view normalisation, channel z lies along the body's spine (the first principal axis of the torso) and
channels x and y span the horizontal plane (x along the hips, y the facing direction), so a rotation about
the vertical axis mixes x and y and leaves z alone. Every transform is linear in the coordinates or masked,
so zero padding (absent frames, absent bodies, padded joint columns) stays exactly zero.

Each layer is the identity at strength 0 and at inference (`training` false), draws from its own
`keras.random.SeedGenerator`, and uses `keras.ops` only, so it runs on every backend and is saved with the
model.
"""

from __future__ import annotations

import math

import keras
from keras import ops


class _Augmentation(keras.layers.Layer):
    """Base: a strength, a seed, and the identity outside training."""

    def __init__(self, strength: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if strength < 0:
            raise ValueError(f"`strength` must be >= 0. Received: strength={strength}")
        self.strength = float(strength)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.strength == 0:
            return inputs
        return self.transform(inputs)

    def transform(self, inputs):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "strength": self.strength, "seed": self.seed}

    def _per_sample_uniform(self, inputs, low, high):
        batch = ops.shape(inputs)[0]
        return keras.random.uniform((batch,), low, high, seed=self.seed_generator, dtype=inputs.dtype)


@keras.saving.register_keras_serializable(package="mans")
class RandomVerticalRotation(_Augmentation):
    """Rotates each sample about the body's vertical axis by an angle drawn from [-strength, strength] degrees.

    Call: inputs (batch, T, J, 3), channels x, y, z. Returns: the same shape; bone lengths are kept.
    """

    def transform(self, inputs):
        angle = self._per_sample_uniform(inputs, -self.strength, self.strength) * (math.pi / 180.0)
        cos = ops.cos(angle)[:, None, None]  # (B, 1, 1)
        sin = ops.sin(angle)[:, None, None]
        x, y, z = inputs[..., 0], inputs[..., 1], inputs[..., 2]  # each (B, T, J)
        return ops.stack([cos * x - sin * y, sin * x + cos * y, z], axis=-1)


@keras.saving.register_keras_serializable(package="mans")
class RandomScale(_Augmentation):
    """Scales each sample by a factor drawn from [1 - strength, 1 + strength] (body size differences)."""

    def __init__(self, strength: float = 0.0, seed: int | None = None, **kwargs):
        if strength >= 1:
            raise ValueError(f"`strength` must be < 1 so that the scale stays positive. Received: strength={strength}")
        super().__init__(strength, seed, **kwargs)

    def transform(self, inputs):
        factor = self._per_sample_uniform(inputs, 1.0 - self.strength, 1.0 + self.strength)
        return inputs * factor[:, None, None, None]  # (B, 1, 1, 1)


@keras.saving.register_keras_serializable(package="mans")
class JointJitter(_Augmentation):
    """Adds Gaussian noise of standard deviation `strength` (metres) to every present joint."""

    def transform(self, inputs):
        present = ops.cast(ops.any(ops.not_equal(inputs, 0), axis=-1, keepdims=True), inputs.dtype)  # (B, T, J, 1)
        noise = keras.random.normal(ops.shape(inputs), stddev=self.strength, seed=self.seed_generator,
                                    dtype=inputs.dtype)
        return inputs + noise * present


@keras.saving.register_keras_serializable(package="mans")
class RandomTimeWarp(_Augmentation):
    """Warps the frame axis smoothly inside each sample's recorded span, leaving padded rows at zero.

    Output frame k of the span [a, b] reads the input at a + (b - a) * g(u), u = (k - a) / (b - a), with
    g(u) = u + r * sin(pi * u) / pi and r drawn from [-strength, strength]: g is monotone for strength <= 1,
    fixes both ends, and speeds up one half of the action while slowing the other. Rows between two input
    rows are linearly interpolated.
    """

    def __init__(self, strength: float = 0.0, seed: int | None = None, **kwargs):
        if strength > 1:
            raise ValueError(f"`strength` must be <= 1 to keep the warp monotone. Received: strength={strength}")
        super().__init__(strength, seed, **kwargs)

    def transform(self, inputs):
        first, span, u, inside = _span_coordinates(inputs)
        r = self._per_sample_uniform(inputs, -self.strength, self.strength)[:, None]
        source = first + span * (u + r * ops.sin(math.pi * u) / math.pi)  # (B, T) positions
        return _interpolate_rows(inputs, source) * inside


@keras.saving.register_keras_serializable(package="mans")
class RandomTemporalCrop(_Augmentation):
    """Crops each sample's recorded span to a random part of it and stretches that part back over the span.

    The kept part has a length drawn from [1 - strength, 1] of the span [a, b] and a uniformly drawn start;
    output frame k of the span reads the input at a + start + length * u, u = (k - a) / (b - a), linearly
    interpolated. Padded rows stay zero. A random temporal crop with a speed change, in one transform.
    """

    def __init__(self, strength: float = 0.0, seed: int | None = None, **kwargs):
        if strength >= 1:
            raise ValueError(f"`strength` must be < 1 so that something is kept. Received: strength={strength}")
        super().__init__(strength, seed, **kwargs)

    def transform(self, inputs):
        first, span, u, inside = _span_coordinates(inputs)
        keep = self._per_sample_uniform(inputs, 1.0 - self.strength, 1.0)[:, None]  # (B, 1)
        start = self._per_sample_uniform(inputs, 0.0, 1.0)[:, None] * (1.0 - keep)
        source = first + span * (start + keep * u)  # (B, T) positions
        return _interpolate_rows(inputs, source) * inside


@keras.saving.register_keras_serializable(package="mans")
class RandomMirror(_Augmentation):
    """Mirrors each sample left-right with probability `strength`: the lateral channel x is negated and each
    joint column trades places with its mirror twin (`columns[k]` is the column that column k reads from).

    After the view normalisation (`mans.preprocessing.preprocess`) x lies along the hips at the body's reference
    frame, so
    the mirror image is the same action performed with the other hand or foot. `columns` comes from
    `mans.preprocessing.preprocess.mirror_columns` for the dataset's joint layout.
    """

    def __init__(self, strength: float = 0.0, seed: int | None = None, columns: list[int] | None = None, **kwargs):
        if strength > 1:
            raise ValueError(f"`strength` is a probability and must be <= 1. Received: strength={strength}")
        if strength and not columns:
            raise ValueError("`columns` (the mirror twin of every joint column) is required when strength > 0")
        super().__init__(strength, seed, **kwargs)
        self.columns = [int(c) for c in columns] if columns else None

    def transform(self, inputs):
        if len(self.columns) != inputs.shape[2]:
            raise ValueError(f"expected {inputs.shape[2]} mirror columns, found {len(self.columns)}")
        flipped = ops.take(inputs * ops.convert_to_tensor([-1.0, 1.0, 1.0], inputs.dtype), self.columns, axis=2)
        chosen = self._per_sample_uniform(inputs, 0.0, 1.0) < self.strength  # (B,)
        return ops.where(chosen[:, None, None, None], flipped, inputs)

    def get_config(self):
        return {**super().get_config(), "columns": self.columns}


def _recorded_span(inputs):
    """(first, last, steps): each sample's first and last non-zero row (B,) and the row numbers (1, T)."""
    frames = ops.shape(inputs)[1]
    present = ops.any(ops.not_equal(inputs, 0), axis=(2, 3))  # (B, T)
    first = ops.cast(ops.argmax(ops.cast(present, "int32"), axis=1), inputs.dtype)  # (B,)
    last = ops.cast(frames - 1 - ops.argmax(ops.cast(ops.flip(present, axis=1), "int32"), axis=1), inputs.dtype)
    return first, last, ops.cast(ops.arange(frames), inputs.dtype)[None, :]


def _span_coordinates(inputs):
    """(first (B, 1), span (B, 1), u (B, T), inside (B, T, 1, 1)): each sample's first recorded row, the length
    of its recorded span (at least 1), every row's place u in [0, 1] along it, and 1 on the span's rows, 0 on
    the padding (which stays zero)."""
    first, last, steps = _recorded_span(inputs)
    span = ops.maximum(last - first, 1.0)[:, None]
    inside = ops.cast((steps >= first[:, None]) & (steps <= last[:, None]), inputs.dtype)[:, :, None, None]
    return first[:, None], span, ops.clip((steps - first[:, None]) / span, 0.0, 1.0), inside


def _interpolate_rows(inputs, source):
    """inputs (B, T, J, C) read at fractional row positions source (B, T), linearly."""
    frames = ops.shape(inputs)[1]
    low = ops.clip(ops.floor(source), 0, frames - 1)
    high = ops.clip(low + 1, 0, frames - 1)
    weight = (source - low)[:, :, None, None]  # (B, T, 1, 1)
    shape = ops.shape(inputs)
    take_low = ops.take_along_axis(inputs, ops.broadcast_to(ops.cast(low, "int32")[:, :, None, None], shape), axis=1)
    take_high = ops.take_along_axis(inputs, ops.broadcast_to(ops.cast(high, "int32")[:, :, None, None], shape), axis=1)
    return take_low * (1.0 - weight) + take_high * weight


AUGMENTATIONS = {
    "mirror": RandomMirror,
    "rotation": RandomVerticalRotation,
    "scale": RandomScale,
    "jitter": JointJitter,
    "time_warp": RandomTimeWarp,
    "crop": RandomTemporalCrop,
}


def augmentation_layers(
    strengths: dict[str, float], seed: int | None = None, mirror_columns: list[int] | None = None
) -> list[keras.layers.Layer]:
    """The layers for the non-zero strengths, in a fixed order (time warp, rotation, scale, jitter, mirror,
    crop).

    Args: strengths: {"rotation": degrees, "scale": fraction, "jitter": metres, "time_warp": 0..1,
        "mirror": probability, "crop": largest share of the span cut away, 0..1}.
        mirror_columns: the mirror twin of each joint column (needed for "mirror").
    """
    unknown = sorted(set(strengths) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"unknown augmentation {unknown}; expected some of {sorted(AUGMENTATIONS)}")
    order = ("time_warp", "rotation", "scale", "jitter", "mirror", "crop")  # new kinds go last: seeds stay
    layers = []
    for offset, key in enumerate(order):
        if strengths.get(key, 0):
            layer_seed = None if seed is None else seed + offset
            extra = {"columns": mirror_columns} if key == "mirror" else {}
            layers.append(AUGMENTATIONS[key](strengths[key], seed=layer_seed, name=f"augment_{key}", **extra))
    return layers
