"""Regularisers for small training sets, beside the paper's recipe: label smoothing, the loss of mixup.

Label smoothing trains against (1 - e) on the true class and e / K spread over all K classes, which keeps
the softmax from saturating on ~100 training sequences. Mixup (`mans.training.data.mix_pairs`) trains on soft targets,
so its runs take one-hot targets, a dense cross-entropy and dense accuracy metrics.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mans")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against smoothed one-hot targets (`label_smoothing` e in [0, 1))."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"`label_smoothing` must be in [0, 1). Received: label_smoothing={label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        targets = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(targets, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def training_loss(label_smoothing: float, dense: bool = False) -> str | keras.losses.Loss:
    """The paper's sparse categorical cross-entropy, or its label-smoothed twin when `label_smoothing` > 0;
    dense: the same of (B, K) targets (mixup)."""
    if dense:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    return SparseSmoothedCrossentropy(label_smoothing)


def accuracy_metrics(num_classes: int, dense: bool = False) -> list[keras.metrics.Metric]:
    """Top-1 ("accuracy") and top-5 ("top5", top-K below 5 classes) of integer labels, or of (B, K) targets."""
    k = min(5, num_classes)
    if dense:
        return [
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k, name="top5"),
        ]
    return [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseTopKCategoricalAccuracy(k, name="top5"),
    ]
