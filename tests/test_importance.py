"""Occlusion importance (mans.evaluation.importance):
the pauses and holds it hides parts with, and, on a model trained on
synthetic images whose classes differ in one joint or in one time window only, that it finds that joint or window."""

import keras
import numpy as np
import pytest

from mans.evaluation import importance
from mans.network.model import build_model

SIZE = 20


def test_a_paused_window_is_the_line_between_its_neighbours():
    image = np.zeros((6, 2, 3), np.float32)
    image[:, :, 0] = np.array([0, 1, 9, 9, 4, 5])[:, None]
    out = importance.paused(image, 2, 3, (0, 5), slice(None))
    np.testing.assert_allclose(out[:, 0, 0], [0, 1, 2, 3, 4, 5])
    held = importance.paused(image, 4, 5, (0, 5), np.array([1]))  # the end of the recording: held, one column
    np.testing.assert_allclose(held[:, 1, 0], [0, 1, 9, 9, 9, 9])
    np.testing.assert_allclose(held[:, 0, 0], image[:, 0, 0])
    still = importance.held_still(image, np.arange(6), 1)
    np.testing.assert_allclose(still[:, 1, 0], np.full(6, 28 / 6))


def test_the_drops_are_measured_against_the_class_probability():
    def predict(images):  # p(class 1) grows with how far column 3 moves along x
        p = 1 / (1 + np.exp(2 - np.ptp(images[:, :, 3, 0], axis=1)))
        return np.stack([1 - p, p], axis=1)

    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[:, 3, 0] = np.linspace(-1, 3, SIZE)
    result = importance.occlusion_importance(predict, image, np.arange(SIZE), np.arange(SIZE), target=1, window=2)
    assert result.target == 1 and result.window == 2
    assert result.top_joints(1) == [3]  # no other column changes the prediction
    np.testing.assert_allclose(np.delete(result.joints, 3), 0, atol=1e-7)
    assert result.map.shape == (SIZE // 2, SIZE) and result.passes == 1 + (SIZE - 1) + SIZE + SIZE // 2 * SIZE


def synthetic(kind: str, count: int, seed: int):
    """Images whose two classes differ only in joint 11's motion ("joint") or only in rows 12-15 ("time")."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, SIZE)[None, :, None]  # (1, T, 1)
    labels = rng.integers(0, 2, count)
    images = np.repeat(0.3 * rng.standard_normal((count, 1, SIZE, 3)), SIZE, axis=1)  # every joint somewhere
    frequency, phase = rng.uniform(0.5, 2, (count, 1, SIZE)), rng.uniform(0, 1, (count, 1, SIZE))
    images[..., 0] += 0.2 * np.sin(2 * np.pi * (frequency * t + phase))  # and moving, whatever the class
    images += 0.02 * rng.standard_normal(images.shape)
    sign = np.where(labels == 1, 1.0, -1.0)
    if kind == "joint":
        images[:, :, 11, 0] += sign[:, None] * np.sin(2 * np.pi * t[0, :, 0])[None]
    else:
        images[:, 12:16, :, 0] += sign[:, None, None]
    return images.astype(np.float32), labels


@pytest.mark.parametrize("kind", ["joint", "time"])
def test_a_trained_model_is_found_to_use_what_tells_its_classes_apart(kind):
    keras.utils.set_random_seed(0)
    x, y = synthetic(kind, 256, seed=1)
    model = build_model(2, "resnet", SIZE, gru_units=8, dropout=0.0, recurrent_dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    tests, labels = synthetic(kind, 40, seed=2)
    assert model.evaluate(tests, labels, verbose=0)[1] > 0.9

    def predict(images):
        return np.asarray(model.predict_on_batch(images))

    for image in tests[:3]:  # windows as wide as the evidence: a narrower pause leaves part of it to decide on
        result = importance.occlusion_importance(predict, image, np.arange(SIZE), np.arange(SIZE), window=4)
        if kind == "joint":
            assert result.top_joints(1) == [11]
        else:
            assert 11 <= int(np.nanargmax(result.frames)) <= 16  # inside rows 12-15, give or take a row
