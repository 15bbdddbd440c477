"""ImageNet DenseNet-161 weights for the densenet161 STCM, read from the files as they are published.

    DenseNet-Keras   `densenet161_weights_tf.h5` (flyyufelix/DenseNet-Keras, converted from shicai/DenseNet-Caffe;
                     the file the authors' 224 model loads): Caffe's layout, each BatchNormalization followed by a
                     separate `Scale` layer, names such as conv1, conv1_bn, conv1_scale, conv2_1_x1_bn, conv2_blk.
                     Each Scale is folded into its BatchNormalization, exactly.
    torchvision      `densenet161-8d451a50.pth` (a PyTorch state dict, read with torch where it is installed).
    timm             `model.safetensors` of `densenet161.tv_in1k`: the same tensors as torchvision's, read with the
                     safetensors package's numpy API (no torch).
    Keras by-name    an `.h5` in the STCM's own layer names or Keras' DenseNet names (`save_backbone_weights`).

Every STCM layer with weights must be found in the file; its classifier and anything else the STCM lacks are
ignored; nothing is assigned unless the whole backbone fits. A PyTorch convolution kernel (out, in, h, w) becomes
Keras' (h, w, in, out). The STCM's BatchNormalization epsilon is the authors' (1.1e-5, `DENSENET_BN_EPSILON`); a
file trained with another epsilon (torchvision's 1e-5) has its variances shifted by the difference, so that every
layer computes exactly what it computed in its source network.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable, Mapping

import h5py
import keras
import numpy as np

DENSENET_BN_EPSILON = 1.1e-5  # the authors' DenseNet-Keras BatchNormalization (Caffe's)
TORCHVISION_BN_EPSILON = 1e-5
TORCH_SUFFIXES = (".pth", ".pt", ".bin")

# (STCM layer pattern, its torchvision module, its DenseNet-Keras layer)
_NAMES: tuple[tuple[re.Pattern, Callable, Callable], ...] = (
    (re.compile(r"stcm_stem_conv"), lambda m: "features.conv0", lambda m: "conv1"),
    (re.compile(r"stcm_stem_bn"), lambda m: "features.norm0", lambda m: "conv1_bn"),
    (re.compile(r"stcm_stage(\d+)_block(\d+)_(bn1|conv1|bn2|conv2)"),
     lambda m: f"features.denseblock{m[1]}.denselayer{m[2]}."
               + {"bn1": "norm1", "conv1": "conv1", "bn2": "norm2", "conv2": "conv2"}[m[3]],
     lambda m: f"conv{int(m[1]) + 1}_{m[2]}_" + {"bn1": "x1_bn", "conv1": "x1", "bn2": "x2_bn", "conv2": "x2"}[m[3]]),
    (re.compile(r"stcm_transition(\d+)_(bn|conv)"),
     lambda m: f"features.transition{m[1]}.{'norm' if m[2] == 'bn' else 'conv'}",
     lambda m: f"conv{int(m[1]) + 1}_blk" + ("_bn" if m[2] == "bn" else "")),
    (re.compile(r"stcm_final_bn"), lambda m: "features.norm5", lambda m: "conv5_blk_bn"),
)
_LEGACY_KEY = re.compile(  # torchvision's own rule for its older densenet files
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def source_name(stcm_layer: str, layout: str) -> str | None:
    """The module (torchvision) or layer (DenseNet-Keras) that holds an STCM layer's weights; None if none."""
    for pattern, torchvision, densenet_keras in _NAMES:
        match = pattern.fullmatch(stcm_layer)
        if match:
            return (torchvision if layout == "torchvision" else densenet_keras)(match)
    return None


def _is_batchnorm(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def _shifted_variance(variance: np.ndarray, epsilon: float, stcm_epsilon: float) -> np.ndarray:
    """The variance that gives the same 1 / sqrt(variance + epsilon) under the STCM's epsilon."""
    return np.maximum(variance + (epsilon - stcm_epsilon), 0.0).astype(np.float32)


def normalise_state_keys(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A PyTorch state dict with the keys torchvision reads: the old "norm.1" spelling of densenet161-8d451a50.pth
    as "norm1" (torchvision's own rule), a DataParallel "module." prefix dropped."""
    keys = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        match = _LEGACY_KEY.match(key)
        keys[match[1] + match[2] if match else key] = value
    return keys


def from_torchvision(layers: list, state: Mapping[str, np.ndarray], path: str,
                     stcm_epsilon: float) -> dict[str, list[np.ndarray]]:
    """{STCM layer name: weights in Keras' order} from a torchvision densenet161 state dict (numpy arrays)."""
    state = normalise_state_keys(state)
    arrays = {}
    for layer in layers:
        module = source_name(layer.name, "torchvision")
        names = ("weight", "bias", "running_mean", "running_var") if _is_batchnorm(layer) else ("weight",)
        found = []
        for name in names:
            key = f"{module}.{name}"
            if key not in state:
                raise ValueError(f"{path}: expected the key {key!r} (DenseNet-161's layer for {layer.name}), "
                                 f"found none; is it a torchvision densenet161 state dict?")
            found.append(np.asarray(state[key], np.float32))
        if _is_batchnorm(layer):
            found[3] = _shifted_variance(found[3], TORCHVISION_BN_EPSILON, stcm_epsilon)
        else:
            found = [np.transpose(found[0], (2, 3, 1, 0))] if found[0].ndim == 4 else found
        arrays[layer.name] = _checked(layer, found, f"{module}.weight", path)
    return arrays


def to_torchvision_state(layers: list) -> dict[str, np.ndarray]:
    """The STCM's weights (the densenet161 layers among `layers`) as a torchvision densenet161 state dict, the
    inverse of `from_torchvision` (variances as the STCM's epsilon has them, so they load back unchanged)."""
    state = {}
    for layer in layers:
        module = source_name(layer.name, "torchvision") if layer.weights else None
        if module is None:
            continue
        weights = [keras.ops.convert_to_numpy(w) for w in layer.weights]
        if _is_batchnorm(layer):
            epsilon = float(layer.epsilon)
            weights[3] = _shifted_variance(weights[3], epsilon, TORCHVISION_BN_EPSILON)
            for name, value in zip(("weight", "bias", "running_mean", "running_var"), weights, strict=True):
                state[f"{module}.{name}"] = np.ascontiguousarray(value, np.float32)
        else:
            state[f"{module}.weight"] = np.ascontiguousarray(np.transpose(weights[0], (3, 2, 0, 1)), np.float32)
    return state


def from_densenet_keras(layers: list, stored: Mapping[str, list[np.ndarray]], path: str,
                        stcm_epsilon: float) -> dict[str, list[np.ndarray]]:
    """{STCM layer name: weights} from a DenseNet-Keras by-name file, each Scale folded into its BatchNormalization:
    BN(x) = g1 (x - m) / sqrt(v + eps) + b1 then g2 BN(x) + b2 is one BatchNormalization with gamma g2 g1 and beta
    g2 b1 + b2."""
    arrays = {}
    for layer in layers:
        name = source_name(layer.name, "densenet-keras")
        if name not in stored:
            raise ValueError(f"{path}: expected the layer {name!r} (DenseNet-Keras' layer for {layer.name}), found "
                             f"none; is it densenet161_weights_tf.h5?")
        found = [np.asarray(a, np.float32) for a in stored[name]]
        if _is_batchnorm(layer):
            found = _folded(found, stored, name.removesuffix("_bn") + "_scale", path, stcm_epsilon)
        arrays[layer.name] = _checked(layer, found, name, path)
    return arrays


def _folded(bn: list[np.ndarray], stored: Mapping, scale_name: str, path: str, stcm_epsilon: float) -> list:
    if len(bn) == 2:  # moving statistics only (no centre, no scale)
        bn = [np.ones_like(bn[0]), np.zeros_like(bn[0]), *bn]
    if len(bn) != 4:
        raise ValueError(f"{path}: expected BatchNormalization weights (gamma, beta, mean, variance) in "
                         f"{scale_name.removesuffix('_scale')}_bn, found {len(bn)} arrays")
    if scale_name not in stored or len(stored[scale_name]) != 2:
        raise ValueError(f"{path}: expected the Scale layer {scale_name!r} (gamma, beta) after its "
                         "BatchNormalization, found none")
    gamma, beta, mean, variance = bn
    scale_gamma, scale_beta = (np.asarray(a, np.float32) for a in stored[scale_name])
    return [scale_gamma * gamma, scale_gamma * beta + scale_beta, mean,
            _shifted_variance(variance, DENSENET_BN_EPSILON, stcm_epsilon)]


def _checked(layer, arrays: list[np.ndarray], source: str, path: str) -> list[np.ndarray]:
    expected = [tuple(w.shape) for w in layer.weights]
    found = [tuple(a.shape) for a in arrays]
    if expected != found:
        raise ValueError(f"{path}: layer {source!r} (model layer {layer.name!r}) expected weight shapes {expected}, "
                         f"found {found}; is it DenseNet-161 (growth 48, 96 stem filters)?")
    return arrays


def read_torch_state(path: str) -> dict[str, np.ndarray]:
    """A `.pth` state dict as numpy arrays, read with torch (weights only)."""
    try:
        import torch
    except ImportError:
        raise ValueError(f"{path}: reading a PyTorch .pth file needs torch (pip install torch); without it, use "
                         "the same weights as safetensors: timm's densenet161.tv_in1k model.safetensors") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch raises RuntimeError, EOFError, UnpicklingError, ...)
        raise ValueError(f"{path}: not a readable PyTorch state dict ({type(error).__name__}: {error})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict (a mapping of names to tensors), found {type(state).__name__}")
    return {key: value.detach().cpu().numpy() for key, value in state.items() if hasattr(value, "detach")}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """A `.safetensors` file's tensors as numpy arrays (the safetensors package's numpy API, no torch)."""
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ValueError(f"{path}: reading .safetensors needs the safetensors package (pip install safetensors)") \
            from None
    try:
        return load_file(path)
    except Exception as error:  # noqa: BLE001 (SafetensorError, OSError, ... for a damaged file)
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from None


def read_by_name(path: str) -> dict[str, list[np.ndarray]]:
    """{layer name: [arrays]} from a Keras by-name HDF5 weights file ("/" in names read as "_")."""
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in root.attrs:
            hint = (
                " It looks like a Keras 3 '.weights.h5' file, which stores weights by position, not by "
                "layer name; write the weights with mans.network.model.save_backbone_weights or in Keras' legacy "
                "'.h5' layout."
                if "layers" in root
                else ""
            )
            raise ValueError(
                f"{path}: expected a Keras HDF5 weights file with per-layer groups (attribute "
                f"'layer_names'), found none.{hint}"
            )
        weights = {}
        for layer_name in root.attrs["layer_names"]:
            layer_name = layer_name.decode() if isinstance(layer_name, bytes) else str(layer_name)
            if layer_name not in root:
                raise ValueError(f"{path}: layer {layer_name!r} is listed but not stored (a damaged file?)")
            group = root[layer_name]
            names = group.attrs.get("weight_names", [])
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
            weights[layer_name.replace("/", "_")] = [np.asarray(group[n]) for n in names]
        return weights


def from_keras_by_name(layers: list, stored: Mapping[str, list[np.ndarray]], path: str,
                       alias: Callable[[str], str | None]) -> dict[str, list[np.ndarray]]:
    """{STCM layer name: weights} from a by-name file in the STCM's own names or Keras' DenseNet names."""
    arrays = {}
    for layer in layers:
        other = alias(layer.name)
        key = layer.name if layer.name in stored else other if other in stored else None
        if key is None:
            also = f" or {other!r}" if other else ""
            raise ValueError(f"{path}: expected weights for layer {layer.name!r}{also}, found none")
        arrays[layer.name] = _checked(layer, [np.asarray(a) for a in stored[key]], key, path)
    return arrays


def read_stcm_weights(layers: list, path: str | os.PathLike,
                      alias: Callable[[str], str | None]) -> tuple[dict[str, list[np.ndarray]], str]:
    """The weights of every STCM layer of `layers` from a published file (module docstring), and the file's
    layout in words. ValueError naming the file and the first layer or key that does not fit."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ImageNet weights file not found: {path}")
    epsilons = {float(layer.epsilon) for layer in layers if _is_batchnorm(layer)}
    stcm_epsilon = epsilons.pop() if len(epsilons) == 1 else DENSENET_BN_EPSILON
    suffix = pathlib.Path(path).suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return from_torchvision(layers, read_torch_state(path), path, stcm_epsilon), "torchvision (PyTorch .pth)"
    if suffix == ".safetensors":
        return from_torchvision(layers, read_safetensors(path), path, stcm_epsilon), "torchvision (safetensors)"
    stored = read_by_name(path)
    if "conv1_scale" in stored or "conv5_blk_scale" in stored:
        arrays = from_densenet_keras(layers, stored, path, stcm_epsilon)
        return arrays, "DenseNet-Keras (Caffe), each Scale folded into its BatchNormalization"
    return from_keras_by_name(layers, stored, path, alias), "Keras by-name"
