"""mans.network.augment: shapes, identity at strength 0, seeds, invariants, and nothing at inference."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from mans.network import augment

S = 16
ALL = [
    augment.RandomVerticalRotation(30.0, seed=1),
    augment.RandomScale(0.2, seed=2),
    augment.JointJitter(0.01, seed=3),
    augment.RandomTimeWarp(0.5, seed=4),
    augment.RandomTemporalCrop(0.5, seed=5),
]


def skeleton_batch(batch: int = 4) -> np.ndarray:
    """Random skeleton images with zero rows before/after the recording and zero joint columns."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, S, S, 3)).astype("float32")
    x[:, :3] = 0  # padded frames before
    x[:, -2:] = 0  # and after
    x[:, :, 10:] = 0  # absent second body / padded joint columns
    return x


@pytest.mark.parametrize("layer", ALL, ids=lambda layer: type(layer).__name__)
def test_shape_dtype_and_zero_padding_kept(layer):
    x = skeleton_batch()
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert y.shape == x.shape and y.dtype == np.float32
    assert not np.allclose(y, x)
    np.testing.assert_array_equal(y[:, :3], 0)
    np.testing.assert_array_equal(y[:, -2:], 0)
    np.testing.assert_array_equal(y[:, :, 10:], 0)


@pytest.mark.parametrize("cls", [type(layer) for layer in ALL], ids=lambda cls: cls.__name__)
def test_identity_at_strength_zero_and_at_inference(cls):
    x = skeleton_batch()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cls(0.0, seed=0)(x, training=True)), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cls(0.5, seed=0)(x, training=False)), x)


@pytest.mark.parametrize("cls", [type(layer) for layer in ALL], ids=lambda cls: cls.__name__)
def test_repeats_under_a_seed(cls):
    x = skeleton_batch()
    first = keras.ops.convert_to_numpy(cls(0.5, seed=7)(x, training=True))
    second = keras.ops.convert_to_numpy(cls(0.5, seed=7)(x, training=True))
    other = keras.ops.convert_to_numpy(cls(0.5, seed=8)(x, training=True))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_rotation_keeps_bone_lengths_and_the_vertical_axis():
    x = skeleton_batch()
    y = keras.ops.convert_to_numpy(augment.RandomVerticalRotation(90.0, seed=0)(x, training=True))
    bone = lambda a: np.linalg.norm(a[:, :, 1:10] - a[:, :, 0:9], axis=-1)  # noqa: E731
    np.testing.assert_allclose(bone(y), bone(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(y[..., 2], x[..., 2])


def test_time_warp_keeps_the_ends_of_the_recording():
    x = skeleton_batch()
    y = keras.ops.convert_to_numpy(augment.RandomTimeWarp(1.0, seed=0)(x, training=True))
    np.testing.assert_allclose(y[:, 3], x[:, 3], atol=1e-6)  # first recorded frame
    np.testing.assert_allclose(y[:, -3], x[:, -3], atol=1e-6)  # last recorded frame


def test_temporal_crop_reads_one_stretched_part_of_the_recording():
    x = np.zeros((2, S, S, 3), np.float32)
    x[:, 3:-2, :10, 0] = np.arange(3, S - 2, dtype=np.float32)[:, None]  # x channel = frame number
    y = keras.ops.convert_to_numpy(augment.RandomTemporalCrop(0.5, seed=0)(x, training=True))
    recorded = y[:, 3:-2, 0, 0]
    assert np.all(np.diff(recorded, axis=1) > 0)  # still in order, now faster
    span = recorded[:, -1] - recorded[:, 0]
    assert np.all(span >= 0.5 * (S - 6) - 1e-4) and np.all(span <= S - 6 + 1e-4)
    assert np.all(recorded >= 3 - 1e-4) and np.all(recorded <= S - 3 + 1e-4)  # inside the recording
    np.testing.assert_array_equal(y[:, :3], 0)
    with pytest.raises(ValueError, match="strength=1.0"):
        augment.RandomTemporalCrop(1.0)


def test_bad_strengths():
    with pytest.raises(ValueError, match="strength=-1"):
        augment.JointJitter(-1)
    with pytest.raises(ValueError, match="strength=1.5"):
        augment.RandomScale(1.5)
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment.augmentation_layers({"shear": 1.0})
    with pytest.raises(ValueError, match="`columns`"):
        augment.RandomMirror(0.5)


def test_augmentation_layers_order_and_config_round_trip():
    layers = augment.augmentation_layers({"rotation": 10, "jitter": 0.0, "time_warp": 0.2, "scale": 0.1}, seed=5)
    assert [layer.name for layer in layers] == ["augment_time_warp", "augment_rotation", "augment_scale"]
    for layer in layers:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_model_with_augmentation_saves_and_loads_in_a_fresh_process(tmp_path):
    inputs = keras.Input((S, S, 3))
    x = inputs
    for layer in augment.augmentation_layers({"rotation": 20, "scale": 0.1, "jitter": 0.01, "time_warp": 0.3}, 1):
        x = layer(x)
    outputs = keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    data = skeleton_batch()
    first = model.predict(data, verbose=0)
    np.testing.assert_array_equal(first, model.predict(data, verbose=0))  # off at inference
    path = tmp_path / "augmented.keras"
    model.save(path)
    np.save(tmp_path / "data.npy", data)
    np.save(tmp_path / "expected.npy", first)
    script = textwrap.dedent(f"""
        import keras, numpy as np, mans.network.augment  # importing mans registers its layers
        model = keras.saving.load_model({str(path)!r})
        out = model.predict(np.load({str(tmp_path / 'data.npy')!r}), verbose=0)
        np.testing.assert_allclose(out, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-6, atol=1e-7)
        print("same")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "same" in result.stdout


def test_build_model_puts_augmentation_before_the_tarm_and_predicts_deterministically():
    from mans.network.model import build_model

    model = build_model(8, size=S, gru_units=4, attention_ratio=4,
                        augmentation={"rotation": 30, "time_warp": 0.2}, augmentation_seed=3)
    names = [layer.name for layer in model.layers]
    assert names.index("augment_time_warp") < names.index("augment_rotation") < names.index("tarm_x")
    x = skeleton_batch()
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    plain = build_model(8, size=S, gru_units=4, attention_ratio=4)
    assert model.count_params() == plain.count_params()  # augmentation adds no weights


def test_mirror_negates_x_and_swaps_the_twin_columns():
    x = skeleton_batch()
    columns = list(range(S))
    columns[1], columns[2] = 2, 1  # joints 1 and 2 are left / right twins
    y = keras.ops.convert_to_numpy(augment.RandomMirror(1.0, seed=0, columns=columns)(x, training=True))
    np.testing.assert_array_equal(y[:, :, 1, 0], -x[:, :, 2, 0])
    np.testing.assert_array_equal(y[:, :, 2, 1:], x[:, :, 1, 1:])
    np.testing.assert_array_equal(y[:, :, 0, 1:], x[:, :, 0, 1:])
    np.testing.assert_array_equal(y[:, :, 10:], 0)
    twice = augment.RandomMirror(1.0, seed=0, columns=columns)(y, training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(twice), x)
    mirror = augment.RandomMirror(0.5, seed=1, columns=columns)
    half = keras.ops.convert_to_numpy(mirror(skeleton_batch(64), training=True))
    flipped = np.any(half != skeleton_batch(64), axis=(1, 2, 3))
    assert 16 < flipped.sum() < 48  # about half of 64


def test_mirror_columns_follow_the_layout():
    from mans.preprocessing import preprocess

    columns = preprocess.mirror_columns(preprocess.KINECT_V1_LAYOUT, 50)
    assert len(columns) == 50 and sorted(columns) == list(range(50))
    assert columns[15 + 4] == 15 + 8 and columns[15 + 19] == 15 + 15 and columns[15 + 3] == 15 + 3
    ntu = preprocess.mirror_columns(preprocess.NTU_LAYOUT, 50)
    assert ntu[21] == 23 and ntu[25 + 12] == 25 + 16  # hand tip twins; the second body's hips
    layer = augment.RandomMirror(0.5, seed=2, columns=columns)
    assert augment.RandomMirror.from_config(layer.get_config()).columns == columns
