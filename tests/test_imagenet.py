"""ImageNet DenseNet-161 weights from the files as published (mans.network.imagenet): torchvision's state dict (here as
safetensors, as timm publishes it), the authors' DenseNet-Keras file with its Scale layers, and the one-line errors
of a wrong file. Hand-made files in each layout; no download."""

import h5py
import numpy as np
import pytest
from safetensors.numpy import save_file

from mans.network import imagenet
from mans.network.model import build_model, load_backbone_weights


@pytest.fixture(scope="module")
def model():
    return build_model(10, "densenet161", size=32, use_tarm=False)


def stcm_layers(model):
    return [layer for layer in model.layers if layer.name.startswith("stcm_") and layer.weights]


def torchvision_state(model, seed: int = 0, legacy: bool = False) -> dict[str, np.ndarray]:
    """Every tensor torchvision's densenet161 holds for the STCM's layers, random, in PyTorch's layout."""
    rng = np.random.default_rng(seed)
    state = {}
    for layer in stcm_layers(model):
        module = imagenet.source_name(layer.name, "torchvision")
        if legacy:  # the spelling of densenet161-8d451a50.pth: "norm.1", "conv.2"
            module = module.replace("norm1", "norm.1").replace("norm2", "norm.2").replace("conv1", "conv.1") \
                .replace("conv2", "conv.2") if "denselayer" in module else module
        if len(layer.weights) == 1:
            h, w, i, o = layer.weights[0].shape
            state[f"{module}.weight"] = rng.standard_normal((o, i, h, w)).astype(np.float32)
        else:
            channels = layer.weights[0].shape[0]
            for name in ("weight", "bias", "running_mean"):
                state[f"{module}.{name}"] = rng.standard_normal(channels).astype(np.float32)
            state[f"{module}.running_var"] = rng.uniform(0.5, 2, channels).astype(np.float32)
            state[f"{module}.num_batches_tracked"] = np.array(7, np.int64)
    state["classifier.weight"] = rng.standard_normal((1000, 2208)).astype(np.float32)
    state["classifier.bias"] = np.zeros(1000, np.float32)
    return state


def test_every_stcm_layer_comes_from_its_torchvision_key_transposed(model, tmp_path):
    state = torchvision_state(model, legacy=True)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    line = load_backbone_weights(model, path)
    assert line == f"ImageNet weights: {len(stcm_layers(model))} STCM layers from {path} (torchvision (safetensors))"
    plain = imagenet.normalise_state_keys(state)
    assert "features.denseblock1.denselayer1.norm1.weight" in plain  # the legacy spelling read as torchvision does
    shift = imagenet.TORCHVISION_BN_EPSILON - imagenet.DENSENET_BN_EPSILON
    for layer in stcm_layers(model):
        module = imagenet.source_name(layer.name, "torchvision")
        got = layer.get_weights()
        if len(got) == 1:
            np.testing.assert_array_equal(got[0], np.transpose(plain[f"{module}.weight"], (2, 3, 1, 0)))
        else:
            for value, name in zip(got[:3], ("weight", "bias", "running_mean"), strict=True):
                np.testing.assert_array_equal(value, plain[f"{module}.{name}"])
            np.testing.assert_allclose(got[3], plain[f"{module}.running_var"] + shift, rtol=1e-6)
    stem = keras_stem_output(model, np.random.default_rng(1).standard_normal((1, 32, 32, 3)).astype(np.float32))
    kernel = plain["features.conv0.weight"]  # (96, 3, 7, 7)
    np.testing.assert_allclose(stem[0], numpy_convolution(stem.image[0], kernel, stride=2, padding=3), rtol=1e-4,
                               atol=1e-4)


class StemOutput(np.ndarray):
    image: np.ndarray


def keras_stem_output(model, image):
    import keras

    out = np.asarray(keras.Model(model.input, model.get_layer("stcm_stem_conv").output)(image)).view(StemOutput)
    out.image = image
    return out


def numpy_convolution(image: np.ndarray, kernel: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """PyTorch's Conv2d (cross-correlation, no bias) of an (H, W, C) image with an (O, C, kh, kw) kernel."""
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[2:], axis=(0, 1))[::stride, ::stride]
    return np.einsum("yxcij,ocij->yxo", windows, kernel)


def densenet_keras_file(model, path, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """A DenseNet-Keras by-name file (Keras 1 names, each BatchNormalization followed by its Scale)."""
    rng = np.random.default_rng(seed)
    layers = {}
    for layer in stcm_layers(model):
        name = imagenet.source_name(layer.name, "densenet-keras")
        if len(layer.weights) == 1:
            layers[name] = [rng.standard_normal(layer.weights[0].shape).astype(np.float32)]
        else:
            channels = layer.weights[0].shape[0]
            layers[name] = [rng.standard_normal(channels).astype(np.float32) for _ in range(3)]
            layers[name].append(rng.uniform(0.5, 2, channels).astype(np.float32))
            layers[name.removesuffix("_bn") + "_scale"] = [rng.standard_normal(channels).astype(np.float32)
                                                           for _ in range(2)]
    layers["fc6"] = [np.zeros((2208, 1000), np.float32), np.zeros(1000, np.float32)]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        for name, arrays in layers.items():
            group = f.create_group(name)
            weight_names = [f"{name}_{k}" for k in range(len(arrays))]
            group.attrs["weight_names"] = [n.encode() for n in weight_names]
            for weight_name, value in zip(weight_names, arrays, strict=True):
                group[weight_name] = value
    return layers


def test_the_authors_densenet_keras_file_with_each_scale_folded(model, tmp_path):
    import keras

    path = tmp_path / "densenet161_weights_tf.h5"
    layers = densenet_keras_file(model, path)
    assert "Scale folded" in load_backbone_weights(model, path)
    np.testing.assert_array_equal(model.get_layer("stcm_stage2_block3_conv1").get_weights()[0], layers["conv3_3_x1"][0])
    x = np.random.default_rng(2).standard_normal((2, 5, 5, 96)).astype(np.float32)
    gamma, beta, mean, variance = layers["conv1_bn"]
    scale_gamma, scale_beta = layers["conv1_scale"]
    expected = scale_gamma * (gamma * (x - mean) / np.sqrt(variance + 1.1e-5) + beta) + scale_beta
    bn = model.get_layer("stcm_stem_bn")
    assert bn.epsilon == pytest.approx(1.1e-5)  # the authors' epsilon: the fold is exact
    np.testing.assert_allclose(np.asarray(bn(keras.ops.convert_to_tensor(x), training=False)), expected, rtol=1e-5,
                               atol=1e-5)


def test_a_wrong_file_is_one_line_naming_the_first_key_that_does_not_fit(model, tmp_path):
    classifier_only = tmp_path / "classifier.safetensors"
    save_file({"classifier.weight": np.zeros((1000, 2208), np.float32)}, str(classifier_only))
    with pytest.raises(ValueError, match=r"classifier.safetensors: expected the key 'features.conv0.weight'"):
        load_backbone_weights(model, classifier_only)
    state = torchvision_state(model)
    state["features.denseblock2.denselayer1.conv1.weight"] = np.zeros((128, 384, 1, 1), np.float32)  # growth 32
    other = tmp_path / "densenet121.safetensors"
    save_file(state, str(other))
    with pytest.raises(ValueError, match=r"layer 'features.denseblock2.denselayer1.conv1.weight' .*found "
                                         r"\[\(1, 1, 384, 128\)\]; is it DenseNet-161"):
        load_backbone_weights(model, other)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(other.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.safetensors: not a readable safetensors file"):
        load_backbone_weights(model, truncated)
    path = tmp_path / "densenet161_weights_tf.h5"
    densenet_keras_file(model, path)
    with h5py.File(path, "a") as f:
        del f["conv4_7_x2_scale"]
    with pytest.raises(ValueError, match="layer 'conv4_7_x2_scale' is listed but not stored"):
        load_backbone_weights(model, path)
    with h5py.File(path, "a") as f:
        f.attrs["layer_names"] = [n.encode() for n in f.attrs["layer_names"] if n != "conv4_7_x2_scale"]
    with pytest.raises(ValueError, match="expected the Scale layer 'conv4_7_x2_scale'"):
        load_backbone_weights(model, path)


def test_a_pth_without_torch_says_what_to_install(model, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as where torch is not installed
    path = tmp_path / "densenet161-8d451a50.pth"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match=r"\.pth file needs torch \(pip install torch\); without it, use the same "
                                         r"weights as safetensors"):
        load_backbone_weights(model, path)


def test_the_stcm_written_in_torchvisions_layout_loads_back_unchanged(model, tmp_path):
    before = [w.copy() for layer in stcm_layers(model) for w in layer.get_weights()]
    path = tmp_path / "round_trip.safetensors"
    save_file(imagenet.to_torchvision_state(model.layers), str(path))
    other = build_model(10, "densenet161", size=32, use_tarm=False)
    load_backbone_weights(other, path)
    after = [w for layer in stcm_layers(other) for w in layer.get_weights()]
    for got, want in zip(after, before, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
