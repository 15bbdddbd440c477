"""Occlusion importance: how much the probability of a class drops when part of the model's image is hidden.

Forward passes only, so it gives the same answer on every Keras backend. The parts hidden are:

    time steps   each window of `window` consecutive real rows in turn, replaced by the straight line between
                 the rows just outside it (the motion paused there; at either end of the recording, held at the
                 nearest row kept); a row's importance is the mean drop over the windows that cover it
    joints       each joint column in turn, held still at its mean position over the real rows
    time x joint each joint column in each block of `window` rows, paused as the time steps are

A drop is p(class | image) - p(class | image with the part hidden): positive where the part supports the class,
negative where hiding it makes the class more likely. Padding rows are never hidden and get no importance (NaN).
A recording of R real rows and C joint columns costs R - window + 1 + C + ceil(R / window) * C forward passes
(about 600 at S = 50 for one Kinect body, about 1,100 for NTU's two), run in batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

BATCH = 128  # occluded images per forward pass


@dataclasses.dataclass(frozen=True)
class Importance:
    """The occlusion importance of one image for one class.

    target: the class explained. probability: its probability for the whole image. frames: (S,) drop per
    image row, NaN for padding rows. joints: (C,) drop per joint column (the layout's C = bodies x joints
    columns, in the image's column order), NaN for a body absent from the recording. blocks: (K, 2) first and
    last row of each time block of the map. map: (K, C) drop per time block and joint column. window: the rows
    hidden together. passes: forward passes used.
    """

    target: int
    probability: float
    frames: np.ndarray
    joints: np.ndarray
    blocks: np.ndarray
    map: np.ndarray
    window: int
    passes: int

    def top_joints(self, count: int) -> list[int]:
        """The `count` joint columns (0-based, of the layout) whose hiding costs most, most important first."""
        order = np.argsort(-np.nan_to_num(self.joints, nan=-np.inf), kind="stable")
        return [int(c) for c in order[:count] if np.isfinite(self.joints[c])]


def default_window(real_rows: int) -> int:
    """A tenth of the recorded rows, at least 1."""
    return max(1, real_rows // 10)


def paused(image: np.ndarray, first: int, last: int, span: tuple[int, int], columns: slice | np.ndarray) -> np.ndarray:
    """A copy of `image` with rows `first`..`last` of `columns` replaced by the straight line between the rows just
    outside them, within the real rows `span` (inclusive); held at the nearer one at an end of the span."""
    out = image.copy()
    rows = np.arange(first, last + 1)
    before = first - 1 if first - 1 >= span[0] else None
    after = last + 1 if last + 1 <= span[1] else None
    if before is None and after is None:
        fill = np.broadcast_to(image[rows][:, columns].mean(0), image[rows][:, columns].shape)
    elif before is None or after is None:
        anchor = image[after if before is None else before, columns]
        fill = np.broadcast_to(anchor, image[rows][:, columns].shape)
    else:
        t = ((rows - before) / (after - before))[:, None, None]
        fill = (1 - t) * image[before, columns][None] + t * image[after, columns][None]
    out[first : last + 1, columns] = fill
    return out


def held_still(image: np.ndarray, real: np.ndarray, column: int) -> np.ndarray:
    """A copy of `image` with one joint column held at its mean over the real rows."""
    out = image.copy()
    out[real, column] = image[real, column].mean(0)
    return out


def occlusion_importance(
    predict: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    real: np.ndarray,
    joint_columns: np.ndarray,
    target: int | None = None,
    window: int | None = None,
    joints_per_body: int | None = None,
) -> Importance:
    """The occlusion importance (module docstring) of one (S, S, 3) image.

    predict: (n, S, S, 3) float32 images -> (n, classes) probabilities. real: the image rows that hold the
    recording (sorted, contiguous). joint_columns: the image columns of the layout's joint columns, in order.
    target: the class explained (default: the predicted one). window: rows hidden together (default
    `default_window`). joints_per_body: the columns of one body (default: all of them); a body whose columns are
    all zero is absent and gets no importance.
    """
    image = np.asarray(image, np.float32)
    real = np.asarray(real)
    joint_columns = np.asarray(joint_columns)
    base = predict(image[None])[0]
    target = int(np.argmax(base)) if target is None else int(target)
    window = default_window(len(real)) if window is None else max(1, min(int(window), len(real)))
    span = (int(real[0]), int(real[-1]))
    per_body = len(joint_columns) if joints_per_body is None else int(joints_per_body)
    bodies = np.asarray(joint_columns).reshape(-1, per_body)
    present = [bool(np.any(image[real][:, body])) for body in bodies for _ in range(per_body)]

    starts = list(range(span[0], span[1] - window + 2))
    time_images = [paused(image, s, s + window - 1, span, slice(None)) for s in starts]
    joint_images = [held_still(image, real, int(c)) for c, seen in zip(joint_columns, present, strict=True) if seen]
    blocks = [(s, min(s + window - 1, span[1])) for s in range(span[0], span[1] + 1, window)]
    map_images = [paused(image, a, b, span, np.array([c])) for a, b in blocks
                  for c, seen in zip(joint_columns, present, strict=True) if seen]
    drops = base[target] - _probabilities(predict, [*time_images, *joint_images, *map_images], target)

    time_drops, rest = drops[: len(starts)], drops[len(starts):]
    frames = np.full(image.shape[0], np.nan)
    covered = np.zeros(image.shape[0])
    totals = np.zeros(image.shape[0])
    for start, drop in zip(starts, time_drops, strict=True):
        totals[start : start + window] += drop
        covered[start : start + window] += 1
    frames[real] = totals[real] / np.maximum(covered[real], 1)

    seen_columns = np.flatnonzero(present)
    joints = np.full(len(joint_columns), np.nan)
    joints[seen_columns] = rest[: len(seen_columns)]
    grid = np.full((len(blocks), len(joint_columns)), np.nan)
    grid[:, seen_columns] = rest[len(seen_columns):].reshape(len(blocks), len(seen_columns))
    return Importance(target=target, probability=float(base[target]), frames=frames, joints=joints,
                      blocks=np.array(blocks), map=grid, window=window, passes=1 + len(drops))


def _probabilities(predict, images: list[np.ndarray], target: int) -> np.ndarray:
    """p(target) of each image, in batches of BATCH."""
    out = [np.asarray(predict(np.stack(images[i : i + BATCH])), np.float64)[:, target]
           for i in range(0, len(images), BATCH)]
    return np.concatenate(out) if out else np.zeros(0)
