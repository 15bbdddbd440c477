"""Tests for mans/network/model.py and mans/network/layers.py: the MANs network (TARM + STCM)."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

from mans.network.layers import TARM
from mans.network.model import (
    build_model,
    frame_attention,
    keras_densenet_name,
    load_backbone_weights,
    save_backbone_weights,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
HAS_JAX = importlib.util.find_spec("jax") is not None
TINY = {"num_classes": 8, "size": 16, "gru_units": 8}  # a small MANs for the slow parts of the tests


def _images(batch: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")


def _perturb(model: keras.Model, seed: int = 0) -> None:
    """Moves every weight (BN statistics included) off its initial value, keeping variances positive."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if weight.path.endswith("moving_variance"):
            weight.assign(rng.uniform(0.5, 2.0, size=shape).astype("float32"))
        else:
            weight.assign(keras.ops.convert_to_numpy(weight.value) + rng.normal(0, 0.05, size=shape))


def _run(script: str, *args: str, backend: str) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(("reset_after", "expected"), [(False, 857_781), (True, 858_933)])
def test_parameter_count_of_the_demo_network(reset_after, expected):
    # 60 classes, S = T = J = 50, GRU 64 (docs/paper.md).
    # TARM, per channel (x3):        56,403 (reset_after=False) / 56,787 (True)
    #   Dense(64) on J=50:           50*64 + 64                        =  3,264
    #   BiGRU(64) on 64 features:    2 * 3 * (64*64 + 64*64 + 64)      = 49,536
    #                                (reset_after adds a second bias: + 2 * 3*64 = 384)
    #   attention Dense(int(50/16)=3) on T=50: 50*3 + 3                =    153
    #   attention Dense(50) on 3:    3*50 + 50                         =    200
    #   Dense(J=50) on 64:           64*50 + 50                        =  3,250
    # STCM (pre-activation ResNet):  688,572
    #   stem Conv5x5 3->64 + BN:     (5*5*3*64 + 64) + 4*64            =  5,120
    #   stage 1 block 1 (no pre-BN): 2 * (3*3*64*64 + 64) + BN(64)     = 74,112
    #   stage 1 block 2:             2 * (36,928 + BN(64) 256)         = 74,368
    #   stage 2 block 1:             BN(64) 256 + (3*3*64*128 + 128) + BN(128) 512 + (3*3*128*128 + 128)
    #                                + shortcut 1x1 (64*128 + 128)     = 230,528
    #   stage 2 block 2:             2 * (BN(128) 512 + 147,584)       = 296,192
    #   final BN(128):                                                 =    512
    #   Dense(60) on 128:            128*60 + 60                       =  7,740
    # 3 * 56,403 + 688,572 = 857,781; with reset_after 3 * 56,787 + 688,572 = 858,933.
    model = build_model(60, reset_after=reset_after)
    assert model.count_params() == expected
    assert model.get_layer("tarm_x").count_params() == (56_787 if reset_after else 56_403)
    assert sum(layer.count_params() for layer in model.layers if layer.name.startswith("stcm_")) == 680_832


def test_ablations_remove_exactly_their_parts():
    assert build_model(60, use_tarm=False).count_params() == 688_572  # STCM only: 857,781 - 3 * 56,403
    plain = build_model(60, stcm_residual=False)
    assert plain.count_params() == 857_781 - 8_320  # no 1x1 shortcut conv
    assert not [layer for layer in plain.layers if isinstance(layer, keras.layers.Add)]
    names = [layer.name for layer in build_model(60, use_tarm=False).layers]
    assert names[:2] == ["skeleton", "stcm_stem_conv"]


def test_densenet161_stcm_matches_torchvision_densenet161():
    # torchvision's densenet161 (1000 classes) has 28,681,000 parameters; Keras also counts the BN
    # moving statistics, which are non-trainable, so compare the trainable ones.
    model = build_model(1000, "densenet161", size=32, use_tarm=False)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 28_681_000
    assert model.get_layer("stcm_pool").output.shape == (None, 2208)


@pytest.mark.parametrize(
    ("variant", "size", "num_classes"),
    [("resnet", 50, 60), ("resnet", 50, 120), ("densenet161", 224, 120)],
)
def test_output_shape_and_softmax(variant, size, num_classes):
    model = build_model(num_classes, variant, size)
    assert model.input_shape == (None, size, size, 3)
    assert model.input.name == "skeleton"
    # predict_on_batch: one traced pass is faster than an eager one, whose GRUs step frame by frame in Python
    probabilities = np.asarray(model.predict_on_batch(_images(1, size)))
    assert probabilities.shape == (1, num_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_layer_names_read_like_the_figure():
    names = [layer.name for layer in build_model(60).layers]
    assert names[:6] == ["skeleton", "tarm_x", "tarm_y", "tarm_z", "tarm_stack", "stcm_stem_conv"]
    for name in ("stcm_stage1_block1_conv1", "stcm_stage2_block1_shortcut", "stcm_stage2_block2_add"):
        assert name in names
    assert names[-2:] == ["stcm_pool", "predictions"]
    assert "stcm_stage1_block1_bn1" not in names  # the stem's BN-ReLU serves the first block


def test_tarm_config_json_round_trip():
    layer = TARM(
        12,
        attention_ratio=4,
        dropout=0.25,
        recurrent_dropout=0.1,
        l2=3e-4,
        reset_after=True,
        channel=2,
        identity_start=True,
        name="tarm_z",
    )
    config = json.loads(json.dumps(layer.get_config()))
    expected = {"units": 12, "attention_ratio": 4, "dropout": 0.25, "recurrent_dropout": 0.1, "l2": 3e-4}
    expected.update(reset_after=True, channel=2, identity_start=True, name="tarm_z")
    assert {key: config[key] for key in expected} == expected
    assert TARM.from_config(config).get_config() == layer.get_config()
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    assert serialized["registered_name"] == "mans>TARM"
    clone = keras.saving.deserialize_keras_object(serialized)
    x = _images(2, 8)
    layer.build(x.shape)
    clone.build(x.shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(clone(x)))


def test_attention_weights_one_per_frame_in_unit_interval():
    layer = TARM(8, attention_ratio=4)
    x = _images(3, 16)[..., 0]  # (B, T, J)
    outputs, weights = layer(x, return_attention=True)
    assert tuple(outputs.shape) == (3, 16, 16)
    weights = keras.ops.convert_to_numpy(layer.attention_weights(x))
    assert weights.shape == (3, 16)
    assert np.all((weights > 0) & (weights < 1))
    model = build_model(**TINY)
    frames = frame_attention(model, _images(2, 16))
    assert frames.shape == (2, 3, 16)
    assert np.all((frames > 0) & (frames < 1))
    with pytest.raises(ValueError, match="use_tarm=True"):
        frame_attention(build_model(**TINY, use_tarm=False), _images(2, 16))


def test_tarm_is_the_identity_when_its_projection_is_zero():
    model = build_model(**TINY)
    _perturb(model)
    for axis in "xyz":
        project = model.get_layer(f"tarm_{axis}").project
        project.set_weights([np.zeros_like(w) for w in project.get_weights()])
    stacked = keras.Model(model.input, model.get_layer("tarm_stack").output)
    x = _images(2, 16)
    for training in (False, True):  # the GRU dropouts cannot leak past a zero projection
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(stacked(x, training=training)), x)


def test_tarm_identity_start_starts_as_the_identity_and_learns_away_from_it():
    model = build_model(**TINY, tarm_identity_start=True)
    stacked = keras.Model(model.input, model.get_layer("tarm_stack").output)
    x = _images(4, 16)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stacked(x)), x)
    demo_model = build_model(**TINY)
    demo = keras.Model(demo_model.input, demo_model.get_layer("tarm_stack").output)
    assert np.abs(keras.ops.convert_to_numpy(demo(x)) - x).max() > 0.01  # the demo's start is not the identity
    assert model.count_params() == demo_model.count_params()  # the same network
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, np.arange(4), epochs=2, batch_size=4, verbose=0)
    assert np.abs(keras.ops.convert_to_numpy(stacked(x)) - x).max() > 0  # the projection trains from zero


def test_tiny_model_overfits_random_samples():
    keras.utils.set_random_seed(1234)
    x = _images(32, 16, seed=1)
    y = np.arange(32) % 8
    model = build_model(8, size=16, gru_units=8, dropout=0.0, recurrent_dropout=0.0)
    # jit_compile=False: XLA would spend more time compiling than the run takes.
    model.compile(keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", jit_compile=False)
    history = model.fit(x, y, batch_size=32, epochs=8, verbose=0).history["loss"]
    assert history[-1] < 0.25 * history[0], history


def test_mixed_bfloat16_policy_keeps_float32_probabilities():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(**TINY)
        probabilities = model(_images(2, 16), training=False)
    finally:
        keras.config.set_dtype_policy("float32")
    assert keras.backend.standardize_dtype(probabilities.dtype) == "float32"
    assert model.get_layer("tarm_x").compute_dtype == "bfloat16"


LOAD_AND_PREDICT = """
import sys
import keras
import numpy as np
import mans  # the one import a checkpoint needs (README)
x = np.load(sys.argv[1])
for model_path, out_path in zip(sys.argv[2::2], sys.argv[3::2]):  # argv: x.npy (model.keras out.npy)...
    np.save(out_path, keras.saving.load_model(model_path).predict(x, verbose=0))
"""

RELOAD_AND_SAVE = """
import sys
import keras
import numpy as np
import mans  # the one import a checkpoint needs (README)
model = keras.saving.load_model(sys.argv[2])  # saved under another backend
np.save(sys.argv[3], model.predict(np.load(sys.argv[1]), verbose=0))
model.save(sys.argv[4])
"""


def _saved_tiny_model(tmp_path) -> tuple[str, str, np.ndarray]:
    """A perturbed tiny model saved as .keras with its inputs and its in-process predictions."""
    model = build_model(**TINY)
    _perturb(model, seed=3)
    model_path, x_path = str(tmp_path / "tiny.keras"), str(tmp_path / "x.npy")
    x = _images(4, 16, seed=5)
    np.save(x_path, x)
    model.save(model_path)
    return model_path, x_path, model.predict(x, verbose=0)


def test_keras_file_reloads_in_a_fresh_process(tmp_path):
    model_path, x_path, expected = _saved_tiny_model(tmp_path)
    out = str(tmp_path / "reloaded.npy")
    _run(LOAD_AND_PREDICT, x_path, model_path, out, backend=keras.backend.backend())
    np.testing.assert_array_equal(np.load(out), expected)


@pytest.mark.skipif(not HAS_JAX, reason="jax is not installed")
def test_keras_file_round_trip_under_jax(tmp_path):
    tf_model, x_path, tf_expected = _saved_tiny_model(tmp_path)
    jax_expected, jax_model = str(tmp_path / "jax_expected.npy"), str(tmp_path / "jax.keras")
    _run(RELOAD_AND_SAVE, x_path, tf_model, jax_expected, jax_model, backend="jax")
    np.testing.assert_allclose(np.load(jax_expected), tf_expected, atol=1e-5)  # across backends
    jax_out = str(tmp_path / "jax_out.npy")
    _run(LOAD_AND_PREDICT, x_path, jax_model, jax_out, backend="jax")  # a fresh JAX process
    np.testing.assert_array_equal(np.load(jax_out), np.load(jax_expected))


def _stcm_weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for layer in model.layers if layer.name.startswith("stcm_") for w in layer.get_weights()]


def test_backbone_weights_round_trip(tmp_path):
    source = build_model(**TINY)
    _perturb(source, seed=11)
    saved = _stcm_weights(source)
    path = tmp_path / "backbone.h5"
    save_backbone_weights(source, path)
    _perturb(source, seed=12)
    load_backbone_weights(source, path)
    for got, want in zip(_stcm_weights(source), saved, strict=True):
        np.testing.assert_array_equal(got, want)
    fresh = build_model(**{**TINY, "num_classes": 5}, imagenet_weights=str(path))  # classifier not loaded
    for got, want in zip(_stcm_weights(fresh), saved, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(fresh.get_layer("tarm_x").get_weights()[0], source.get_layer("tarm_x").get_weights()[0])


def test_backbone_weights_mismatch_is_named(tmp_path):
    path = tmp_path / "backbone.h5"
    save_backbone_weights(build_model(**TINY), path)
    with h5py.File(path, "a") as f:
        group = f["stcm_stage2_block1_conv1"]
        del group["stcm_stage2_block1_conv1/kernel"]
        group["stcm_stage2_block1_conv1/kernel"] = np.zeros((3, 3, 64, 64), "float32")
    with pytest.raises(
        ValueError,
        match=r"backbone\.h5: layer 'stcm_stage2_block1_conv1'.*\(3, 3, 64, 128\).*"
        r"found \[\(3, 3, 64, 64\)",
    ):
        build_model(**TINY, imagenet_weights=str(path))
    with h5py.File(path, "a") as f:
        del f["stcm_stem_bn"]
        f.attrs["layer_names"] = [n for n in f.attrs["layer_names"] if n != b"stcm_stem_bn"]
    with pytest.raises(ValueError, match="expected weights for layer 'stcm_stem_bn'"):
        build_model(**TINY, imagenet_weights=str(path))
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        build_model(**TINY, imagenet_weights=str(tmp_path / "missing.h5"))
    model = build_model(**TINY)
    model.save_weights(tmp_path / "positional.weights.h5")
    with pytest.raises(ValueError, match="by position"):
        load_backbone_weights(model, tmp_path / "positional.weights.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        load_backbone_weights(model, tmp_path / "text.h5")


def test_densenet161_loads_keras_densenet_names(tmp_path):
    assert keras_densenet_name("stcm_stem_conv") == "conv1_conv"
    assert keras_densenet_name("stcm_stage1_block6_bn1") == "conv2_block6_0_bn"
    assert keras_densenet_name("stcm_stage4_block24_conv2") == "conv5_block24_2_conv"
    assert keras_densenet_name("stcm_transition3_conv") == "pool4_conv"
    assert keras_densenet_name("stcm_final_bn") == "bn"
    assert keras_densenet_name("stcm_pool") is None
    source = build_model(10, "densenet161", size=32, use_tarm=False)
    _perturb(source, seed=4)
    path = tmp_path / "densenet161_keras_names.h5"
    # The Keras 2 layout, with "/" in some layer names as keras.applications wrote them.
    with h5py.File(path, "w") as f:
        layer_names = []
        for layer in source.layers:
            alias = keras_densenet_name(layer.name)
            if alias is None:
                continue
            name = alias.replace("conv1_", "conv1/")
            layer_names.append(name.encode())
            weight_names = [f"{name}/{w.name}:0" for w in layer.weights]
            group = f.create_group(name)
            group.attrs["weight_names"] = [n.encode() for n in weight_names]
            for weight_name, value in zip(weight_names, layer.get_weights(), strict=True):
                group[weight_name] = value
        f.attrs["layer_names"] = layer_names
    target = build_model(60, "densenet161", size=32, imagenet_weights=path)
    for got, want in zip(_stcm_weights(target), _stcm_weights(source), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"variant": "vgg"},
            r"`variant` must be one of \('resnet', 'densenet161'\). Received: variant='vgg'",
        ),
        ({"num_classes": 0}, "Received: num_classes=0"),
        ({"num_classes": 2.5}, "Received: num_classes=2.5"),
        ({"size": 8}, "size=8, attention_ratio=16"),
        ({"gru_units": 0}, "Received: gru_units=0"),
        ({"dropout": 1.0}, r"`dropout` must be a number in \[0, 1\). Received: dropout=1.0"),
        ({"recurrent_dropout": -0.1}, "Received: recurrent_dropout=-0.1"),
        ({"l2": -1.0}, "Received: l2=-1.0"),
        ({"attention_ratio": 0}, "Received: attention_ratio=0"),
        ({"use_tarm": "no"}, "Received: use_tarm='no'"),
        ({"tarm_identity_start": 1}, "Received: tarm_identity_start=1"),
        ({"variant": "densenet161", "size": 16}, "size >= 32.*Received: size=16"),
        ({"variant": "densenet161", "stcm_residual": False}, "variant='resnet' only"),
        ({"imagenet_weights": 3}, "file path or None. Received: 3"),
    ],
)
def test_argument_errors_say_expected_and_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


def test_tarm_argument_and_shape_errors():
    with pytest.raises(ValueError, match="Received: units=0"):
        TARM(0)
    with pytest.raises(ValueError, match="Received: channel=-1"):
        TARM(4, channel=-1)
    with pytest.raises(ValueError, match=r"channel=3 expects .* Received: input_shape=\(None, 16, 16, 3\)"):
        TARM(4, channel=3)(keras.Input((16, 16, 3)))
    with pytest.raises(ValueError, match=r"frames=8, attention_ratio=16"):
        TARM(4)(keras.Input((8, 25)))


def test_frozen_attention_keeps_the_attention_dense_layers_and_trains_the_rest(tmp_path):
    keras.utils.set_random_seed(3)
    model = build_model(4, gru_units=8, frozen_attention=True)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    tarm = model.get_layer("tarm_x")
    frozen = {layer.name: [w.copy() for w in layer.get_weights()] for layer in (tarm.squeeze, tarm.excite)}
    trained = {"embed": tarm.embed.get_weights()[0].copy(), "project": tarm.project.get_weights()[0].copy(),
               "predictions": model.get_layer("predictions").get_weights()[0].copy()}
    x = np.random.default_rng(0).standard_normal((16, 50, 50, 3)).astype(np.float32)
    model.fit(x, np.arange(16) % 4, epochs=2, batch_size=8, verbose=0)
    for layer in (tarm.squeeze, tarm.excite):
        for before, after in zip(frozen[layer.name], layer.get_weights(), strict=True):
            np.testing.assert_array_equal(before, after)
    assert not np.allclose(tarm.embed.get_weights()[0], trained["embed"])  # the rest of the TARM trains
    assert not np.allclose(tarm.project.get_weights()[0], trained["project"])
    assert not np.allclose(model.get_layer("predictions").get_weights()[0], trained["predictions"])
    model.save(tmp_path / "frozen.keras")
    loaded = keras.saving.load_model(tmp_path / "frozen.keras")
    again = loaded.get_layer("tarm_x")
    assert again.frozen_attention and not again.excite.trainable and not again.squeeze.trainable
    np.testing.assert_array_equal(again.excite.get_weights()[0], frozen[tarm.excite.name][0])
    assert build_model(4, gru_units=8).get_layer("tarm_x").excite.trainable  # trained by default
