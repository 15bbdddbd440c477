"""The MANs network: TARM on each coordinate channel, then the CNN-based STCM (docs/paper.md, "The network").

    skeleton (B, S, S, 3)  rows = frames, columns = joint slots, channels = x, y, z
      -> tarm_x, tarm_y, tarm_z   one TARM per channel, own weights, each (B, S, S, 1)
      -> tarm_stack               (B, S, S, 3)
      -> STCM                     "resnet": the authors' 50 x 50 demo network (pre-activation ResNet)
                                  "densenet161": the paper's best NTU model (S = 224)
      -> predictions              (B, num_classes) softmax

Layer names of the STCM (both variants):
    stcm_stem_conv, stcm_stem_bn, stcm_stem_relu  (densenet161 also stcm_stem_pad, stcm_stem_pool_pad,
                                                   stcm_stem_pool)
    stcm_stage{s}_block{b}_{bn1, relu1, conv1, bn2, relu2, conv2}
        resnet: + _shortcut (1x1 conv where the shape changes) and _add; stages 1-2, blocks 1-2
        densenet161: + _concat; conv1 is the 1x1 bottleneck, conv2 the 3x3; stages 1-4, blocks 6-12-36-24
    stcm_transition{s}_{bn, relu, conv, pool}     densenet161 only, s = 1, 2, 3
    stcm_final_bn, stcm_final_relu, stcm_pool

ImageNet weights for the densenet161 STCM load by layer name (`load_backbone_weights`), under these
names or under Keras' DenseNet names (`keras_densenet_name`): stcm_stem_conv = conv1_conv,
stcm_stem_bn = conv1_bn, stcm_stage{s}_block{b}_{bn1, conv1, bn2, conv2} =
conv{s+1}_block{b}_{0_bn, 1_conv, 1_bn, 2_conv}, stcm_transition{s}_{bn, conv} = pool{s+1}_{bn, conv},
stcm_final_bn = bn ("/" in Keras 2 names, as in "conv1/conv", reads as "_"). A torchvision DenseNet-161
converts to these names one to one (features.conv0 = conv1_conv, features.denseblock1.denselayer1.norm1
= conv2_block1_0_bn, ...), kernels transposed from (out, in, kh, kw) to (kh, kw, in, out).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import h5py
import keras
import numpy as np

from mans.network import augment, imagenet
from mans.network.layers import TARM, _check_int, _check_l2, _check_rate

__all__ = [
    "TARM",
    "VARIANT_DEFAULTS",
    "build_model",
    "frame_attention",
    "keras_densenet_name",
    "load_backbone_weights",
    "save_backbone_weights",
]

# Per-variant defaults (docs/paper.md): the demo's 50 x 50 network and the paper's 224 x 224 DenseNet-161.
VARIANT_DEFAULTS: dict[str, dict[str, float]] = {
    "resnet": {"size": 50, "gru_units": 64, "dropout": 0.5, "recurrent_dropout": 0.5},
    "densenet161": {"size": 224, "gru_units": 128, "dropout": 0.0, "recurrent_dropout": 0.0},
}

# DenseNet-161 (Huang et al. 2017; torchvision densenet161): 96 initial filters, growth 48,
# blocks 6-12-36-24, bottleneck 4 * growth, compression 0.5.
DENSENET161_BLOCKS = (6, 12, 36, 24)
DENSENET161_GROWTH = 48
DENSENET161_INITIAL_FILTERS = 96
DENSENET_COMPRESSION = 0.5
# The authors' 224 model (DenseNet-Keras, from Caffe) uses 1.1e-5; weights trained with another epsilon are
# adjusted on loading (`mans.network.imagenet`), so every source computes what it computed where it was trained.
DENSENET_BN_EPSILON = imagenet.DENSENET_BN_EPSILON
# Five halvings (stem conv, stem pool, three transitions) must leave at least one pixel.
DENSENET_MIN_SIZE = 32


def build_model(
    num_classes: int = 60,
    variant: str = "resnet",
    size: int | None = None,
    *,
    gru_units: int | None = None,
    dropout: float | None = None,
    recurrent_dropout: float | None = None,
    l2: float = 1e-4,
    attention_ratio: int = 16,
    use_tarm: bool = True,
    stcm_residual: bool = True,
    reset_after: bool = False,
    tarm_identity_start: bool = False,
    frozen_attention: bool = False,
    imagenet_weights: str | os.PathLike | None = None,
    augmentation: Mapping[str, float] | None = None,
    augmentation_seed: int | None = None,
    mirror_columns: list[int] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Builds the MANs network (TARM + STCM) as a functional Keras model.

    Args:
        num_classes: number of actions (60 NTU-60, 120 NTU-120).
        variant: "resnet" (the authors' 50 x 50 demo network) or "densenet161" (the paper's best NTU model).
        size: S, the frames and joint columns of the input image; None: 50 (resnet) or 224 (densenet161).
        gru_units: width of the TARM embedding and GRU; None: 64 (resnet) or 128 (densenet161).
        dropout: GRU input dropout; None: 0.5 (resnet) or 0.0 (densenet161).
        recurrent_dropout: GRU recurrent dropout; None: 0.5 (resnet) or 0.0 (densenet161). 0 together with
            reset_after=True lets the GRU use the fused cuDNN kernel on a GPU.
        l2: L2 factor on the GRU input kernels and the STCM convolutions (1e-4; 0 disables it).
        attention_ratio: alpha, the attention bottleneck has int(S / alpha) units (16).
        use_tarm: False feeds the raw skeleton image to the STCM (the paper's "STCM only" baseline).
        stcm_residual: False drops the shortcuts of the resnet STCM (plain conv blocks; ablation).
        reset_after: GRU bias convention; False is the demo's Keras 2 GRU (857,781 parameters at 60
            classes), True Keras 3's default and cuDNN's (858,933).
        tarm_identity_start: True starts each TARM as the identity (its output Dense at zero, see
            `mans.network.layers.TARM`); False starts it as the demo does. Same network, other starting weights.
        frozen_attention: True keeps each TARM's attention Dense layers at their starting weights, as the demo's
            untracked Lambda did (`mans.network.layers.TARM`); False trains them.
        imagenet_weights: optional HDF5 file of ImageNet weights for the STCM, loaded by layer name
            (see `load_backbone_weights`).
        augmentation: training-only input transforms and their strengths, e.g. {"rotation": 30.0,
            "scale": 0.1, "jitter": 0.005, "time_warp": 0.3} (see `mans.network.augment`); None or zeros: none.
            Identity at inference, saved with the model.
        augmentation_seed: seed of the augmentation layers' random draws.
        mirror_columns: the mirror twin of each of the S joint columns (`mans.preprocessing.preprocess.mirror_columns`),
            needed by the "mirror" augmentation.
        name: model name; None: "mans_<variant>".

    Returns:
        A `keras.Model` from "skeleton" (B, S, S, 3) float32 to "predictions" (B, num_classes) softmax.
    """
    _check_choice("variant", variant, tuple(VARIANT_DEFAULTS))
    defaults = VARIANT_DEFAULTS[variant]
    size = defaults["size"] if size is None else size
    gru_units = defaults["gru_units"] if gru_units is None else gru_units
    dropout = defaults["dropout"] if dropout is None else dropout
    recurrent_dropout = defaults["recurrent_dropout"] if recurrent_dropout is None else recurrent_dropout
    _check_int("num_classes", num_classes, 1)
    _check_int("size", size, 1)
    _check_int("gru_units", gru_units, 1)
    _check_int("attention_ratio", attention_ratio, 1)
    _check_rate("dropout", dropout)
    _check_rate("recurrent_dropout", recurrent_dropout)
    _check_l2(l2)
    flags = {
        "use_tarm": use_tarm,
        "stcm_residual": stcm_residual,
        "reset_after": reset_after,
        "tarm_identity_start": tarm_identity_start,
        "frozen_attention": frozen_attention,
    }
    for flag, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"`{flag}` must be True or False. Received: {flag}={value!r}")
    if use_tarm and size < attention_ratio:
        raise ValueError(
            f"`size` must be >= attention_ratio so that the TARM bottleneck int(size / attention_ratio) "
            f"has at least one unit. Received: size={size}, attention_ratio={attention_ratio}"
        )
    if variant == "densenet161":
        if size < DENSENET_MIN_SIZE:
            raise ValueError(
                f"variant='densenet161' needs size >= {DENSENET_MIN_SIZE} (five halvings). Received: size={size}"
            )
        if not stcm_residual:
            raise ValueError(
                "`stcm_residual=False` applies to variant='resnet' only (DenseNet has no shortcuts). "
                f"Received: variant={variant!r}, stcm_residual=False"
            )
    if imagenet_weights is not None and not isinstance(imagenet_weights, (str, os.PathLike)):
        raise ValueError(f"`imagenet_weights` must be a file path or None. Received: {imagenet_weights!r}")

    inputs = keras.Input((size, size, 3), name="skeleton")  # (B, T, J, xyz)
    x = inputs
    for layer in augment.augmentation_layers(dict(augmentation or {}), augmentation_seed, mirror_columns):
        x = layer(x)  # (B, T, J, xyz), training only
    if use_tarm:
        channels = [
            TARM(
                gru_units,
                attention_ratio=attention_ratio,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                l2=l2,
                reset_after=reset_after,
                channel=index,
                identity_start=tarm_identity_start,
                frozen_attention=frozen_attention,
                name=f"tarm_{axis}",
            )(x)  # (B, T, J, 1)
            for index, axis in enumerate("xyz")
        ]
        x = keras.layers.Concatenate(axis=-1, name="tarm_stack")(channels)  # (B, T, J, 3)
    if variant == "resnet":
        x = _resnet_stcm(x, l2=l2, residual=stcm_residual)
    else:
        x = _densenet_stcm(x, l2=l2)
    # float32 softmax also under a mixed precision policy (Keras mixed precision guide).
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", kernel_initializer="he_normal", name="predictions", dtype="float32"
    )(x)
    model = keras.Model(inputs, outputs, name=name or f"mans_{variant}")
    if imagenet_weights is not None:
        load_backbone_weights(model, imagenet_weights)
    return model


def frame_attention(model: keras.Model, x) -> np.ndarray:
    """The TARM frame weights of a MANs model for a batch (inference mode).

    Args:
        model: a model from `build_model` with use_tarm=True.
        x: (B, S, S, 3) skeleton images.

    Returns:
        (B, 3, S) float array in (0, 1): the weight of each frame for the x, y and z channels.
    """
    names = ("tarm_x", "tarm_y", "tarm_z")
    present = {layer.name for layer in model.layers}
    if not set(names) <= present:
        raise ValueError(
            f"`model` must have the TARM layers {names} (built with use_tarm=True). Received: {model.name!r}"
        )
    weights = [keras.ops.convert_to_numpy(model.get_layer(n).attention_weights(x)) for n in names]
    return np.stack(weights, axis=1)  # (B, 3, T)


def _l2(factor: float):
    return keras.regularizers.L2(factor) if factor > 0 else None


def _conv(filters: int, kernel: int, strides: int, l2: float, name: str, padding="same", use_bias=True):
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        kernel_regularizer=_l2(l2),
        name=name,
    )


def _resnet_stcm(x, *, l2: float, residual: bool):
    """The demo's pre-activation ResNet: (B, S, S, 3) -> (B, 128) pooled features."""
    x = _conv(64, 5, 2, l2, "stcm_stem_conv")(x)  # no max-pool after it (commented out in the demo)
    x = keras.layers.BatchNormalization(name="stcm_stem_bn")(x)
    x = keras.layers.Activation("relu", name="stcm_stem_relu")(x)
    for stage, filters in ((1, 64), (2, 128)):
        for block in (1, 2):
            x = _basic_block(
                x,
                filters,
                strides=2 if stage > 1 and block == 1 else 1,
                preactivate=not (stage == 1 and block == 1),  # the stem already ends in BN-ReLU
                residual=residual,
                l2=l2,
                prefix=f"stcm_stage{stage}_block{block}",
            )
    x = keras.layers.BatchNormalization(name="stcm_final_bn")(x)
    x = keras.layers.Activation("relu", name="stcm_final_relu")(x)
    return keras.layers.GlobalAveragePooling2D(name="stcm_pool")(x)


def _basic_block(x, filters: int, *, strides: int, preactivate: bool, residual: bool, l2: float, prefix: str):
    """BN-ReLU-Conv3x3, BN-ReLU-Conv3x3, plus the shortcut from the block's input."""
    y = x
    if preactivate:
        y = keras.layers.BatchNormalization(name=f"{prefix}_bn1")(y)
        y = keras.layers.Activation("relu", name=f"{prefix}_relu1")(y)
    y = _conv(filters, 3, strides, l2, f"{prefix}_conv1")(y)
    y = keras.layers.BatchNormalization(name=f"{prefix}_bn2")(y)
    y = keras.layers.Activation("relu", name=f"{prefix}_relu2")(y)
    y = _conv(filters, 3, 1, l2, f"{prefix}_conv2")(y)
    if not residual:
        return y
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv(filters, 1, strides, l2, f"{prefix}_shortcut", padding="valid")(x)
    return keras.layers.Add(name=f"{prefix}_add")([shortcut, y])


def _densenet_stcm(x, *, l2: float):
    """DenseNet-161 laid out as Keras' DenseNet: (B, S, S, 3) -> (B, 2208) pooled features."""
    eps = DENSENET_BN_EPSILON
    x = keras.layers.ZeroPadding2D(3, name="stcm_stem_pad")(x)
    x = _conv(DENSENET161_INITIAL_FILTERS, 7, 2, l2, "stcm_stem_conv", padding="valid", use_bias=False)(x)
    x = keras.layers.BatchNormalization(epsilon=eps, name="stcm_stem_bn")(x)
    x = keras.layers.Activation("relu", name="stcm_stem_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="stcm_stem_pool_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="stcm_stem_pool")(x)
    for stage, blocks in enumerate(DENSENET161_BLOCKS, start=1):
        for block in range(1, blocks + 1):
            prefix = f"stcm_stage{stage}_block{block}"
            y = keras.layers.BatchNormalization(epsilon=eps, name=f"{prefix}_bn1")(x)
            y = keras.layers.Activation("relu", name=f"{prefix}_relu1")(y)
            y = _conv(4 * DENSENET161_GROWTH, 1, 1, l2, f"{prefix}_conv1", use_bias=False)(y)
            y = keras.layers.BatchNormalization(epsilon=eps, name=f"{prefix}_bn2")(y)
            y = keras.layers.Activation("relu", name=f"{prefix}_relu2")(y)
            y = _conv(DENSENET161_GROWTH, 3, 1, l2, f"{prefix}_conv2", use_bias=False)(y)
            x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, y])  # (B, H, W, C + growth)
        if stage < len(DENSENET161_BLOCKS):
            prefix = f"stcm_transition{stage}"
            filters = int(x.shape[-1] * DENSENET_COMPRESSION)
            x = keras.layers.BatchNormalization(epsilon=eps, name=f"{prefix}_bn")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
            x = _conv(filters, 1, 1, l2, f"{prefix}_conv", use_bias=False)(x)
            x = keras.layers.AveragePooling2D(2, strides=2, name=f"{prefix}_pool")(x)
    x = keras.layers.BatchNormalization(epsilon=eps, name="stcm_final_bn")(x)
    x = keras.layers.Activation("relu", name="stcm_final_relu")(x)
    return keras.layers.GlobalAveragePooling2D(name="stcm_pool")(x)


_KERAS_DENSENET_PATTERNS = (
    (re.compile(r"stcm_stem_(conv|bn)"), lambda m: f"conv1_{m[1]}"),
    (
        re.compile(r"stcm_stage(\d+)_block(\d+)_(bn1|conv1|bn2|conv2)"),
        lambda m: (
            f"conv{int(m[1]) + 1}_block{m[2]}_"
            + {"bn1": "0_bn", "conv1": "1_conv", "bn2": "1_bn", "conv2": "2_conv"}[m[3]]
        ),
    ),
    (re.compile(r"stcm_transition(\d+)_(bn|conv)"), lambda m: f"pool{int(m[1]) + 1}_{m[2]}"),
    (re.compile(r"stcm_final_bn"), lambda m: "bn"),
)


def keras_densenet_name(name: str) -> str | None:
    """Keras' DenseNet name of a densenet161 STCM layer with weights, e.g. stcm_stem_conv -> conv1_conv.

    Args:
        name: a layer name of the STCM (see the module docstring).

    Returns:
        The layer's name in `keras.applications.DenseNet*`, or None when the layer has no counterpart.
    """
    for pattern, rename in _KERAS_DENSENET_PATTERNS:
        match = pattern.fullmatch(name)
        if match:
            return rename(match)
    return None


def _backbone_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if layer.name.startswith("stcm_") and layer.weights]


def save_backbone_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Writes the STCM weights by layer name, in the HDF5 layout of Keras' by-name ".h5" weight files.

    Args:
        model: a model from `build_model`.
        path: the file to write (overwritten); `load_backbone_weights` and `build_model(imagenet_weights=)`
            read it back.
    """
    layers = _backbone_layers(model)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode() for layer in layers])
        f.attrs["backend"] = keras.backend.backend().encode()
        f.attrs["keras_version"] = keras.__version__.encode()
        for layer in layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}".encode() for w in layer.weights]
            group.attrs["weight_names"] = np.array(names)
            for weight_name, weight in zip(names, layer.weights, strict=True):
                group.create_dataset(weight_name.decode(), data=keras.ops.convert_to_numpy(weight.value))


def load_backbone_weights(model: keras.Model, path: str | os.PathLike) -> str:
    """Loads ImageNet weights into the STCM from a published file (`mans.network.imagenet`): the authors'
    DenseNet-Keras `densenet161_weights_tf.h5`, torchvision's `.pth`, timm's `.safetensors`, or a by-name Keras
    `.h5` in the STCM's own or Keras' DenseNet names. TARM and the predictions layer keep their weights;
    nothing is assigned unless the whole backbone fits.

    Returns:
        The line that says what was loaded: the file, its layout and the number of layers.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not one of those layouts, lacks a layer of the STCM, or holds weights of another
            shape; the message names the file and the first such layer or key.
    """
    layers = _backbone_layers(model)
    arrays, layout = imagenet.read_stcm_weights(layers, path, keras_densenet_name)
    for layer in layers:
        layer.set_weights(arrays[layer.name])
    return f"ImageNet weights: {len(layers)} STCM layers from {os.fspath(path)} ({layout})"


def _check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={value!r}")
