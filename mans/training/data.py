"""Batches of MANs input images from an HDF5 file written by `process_data.py`.

The file layout is documented in `mans.preprocessing.storage` and `mans.preprocessing.samples` (each sample an
(S, S, 3) float32 image,
axes time, joint column, coordinate, stored as its rows that carry data; `/label` is the 0-based action).
This module opens such a file, selects the samples of a benchmark split, and serves them to Keras as a
`keras.utils.PyDataset`, either read batch by batch from the file (memory-mapped) or from an in-memory copy
of the stored rows; the images are assembled at batch time and are exactly those `mans.preprocessing.preprocess` made.

Training order is a pure function of (seed, epoch, batch): batch `b` of epoch `e` holds the rows
`permutation[b * B:(b + 1) * B]` of `np.random.default_rng((seed, e)).permutation(n)`, read in ascending
file order. The same batches therefore come back after a resume, with any number of workers, threads or
processes, and from the file or from memory alike.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from collections.abc import Mapping

import h5py
import keras
import numpy as np

from mans.preprocessing import samples, splits, storage

IN_MEMORY_FRACTION = 0.25  # "auto" loads a split when it takes less than this share of the RAM (ours)


class UsageError(ValueError):
    """A mistake in what the user asked for; the scripts print it as one line `error: ...` and exit 2."""


@dataclasses.dataclass(frozen=True)
class DataFile:
    """An opened mans HDF5 file: its columns (everything but `x`) and its decoded attributes.

    Attributes:
        path: the file.
        meta: columns `label`, `setup`, `camera`, `performer`, `replication`, `frames`, `name`, each (N,).
        attrs: the file's attributes (`dataset`, `mode`, `size`, `num_classes`, `class_names`, ...).
    """

    path: pathlib.Path
    meta: Mapping[str, np.ndarray]
    attrs: Mapping[str, object]

    @property
    def num_samples(self) -> int:
        return int(len(self.meta["label"]))

    @property
    def size(self) -> int:
        return int(self.attrs["size"])

    @property
    def num_classes(self) -> int:
        return int(self.attrs["num_classes"])

    @property
    def dataset(self) -> str:
        return str(self.attrs["dataset"])

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.attrs["class_names"])

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.meta["label"], dtype=np.int32)

    @property
    def names(self) -> np.ndarray:
        """Sample names as str, (N,), in file order (ascending)."""
        return np.array([_as_str(n) for n in self.meta["name"]])


@dataclasses.dataclass(frozen=True)
class Splits:
    """Row indices (ascending) of the samples used to fit, to validate and to test.

    `validation` says where the validation rows come from: "holdout" (performers held out of the training
    split), "test" (the test split itself, as in the authors' demo) or "none" (no validation rows).
    """

    fit: np.ndarray
    val: np.ndarray
    test: np.ndarray
    validation: str


def open_data(path: str | os.PathLike) -> DataFile:
    """Open a mans HDF5 file and check that it can feed a model.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a mans HDF5 file, or its `x` does not match its attributes.
    """
    path = pathlib.Path(path)
    meta, attrs = storage.read_metadata(path)
    attrs = dict(attrs)
    if isinstance(attrs.get("class_names"), str):
        attrs["class_names"] = json.loads(attrs["class_names"])
    with h5py.File(path, "r") as f:
        _check_images(path, f, len(meta["label"]), int(attrs["size"]))
    return DataFile(path=path, meta=meta, attrs=attrs)


def _check_images(path: pathlib.Path, f: h5py.File, n: int, size: int) -> None:
    """ValueError unless the file's images (format 2 rows, or format 1 /x) match its columns and size."""
    if "rows" in f:
        found = {key: tuple(f[key].shape) for key in samples.ROW_COLUMNS}
        if any(shape != (n,) for shape in found.values()):
            raise ValueError(f"{path}: expected {', '.join(samples.ROW_COLUMNS)} of shape ({n},), found {found}")
        columns = int(f.attrs.get("columns", -1))
        if tuple(f["rows"].shape[1:]) != (columns, 3) or columns > size:
            raise ValueError(f"{path}: expected /rows of shape (R, {columns}, 3), found {tuple(f['rows'].shape)}")
        return
    if "x" not in f:
        raise ValueError(f"{path}: expected the sample rows /rows (or format 1's images /x), found neither")
    expected, shape = (n, size, size, 3), tuple(f["x"].shape)
    if shape != expected:
        raise ValueError(f"{path}: expected /x of shape {expected} (from /label and attrs size), found {shape}")


def select_splits(
    data: DataFile,
    benchmark: str,
    *,
    val: str = "holdout",
    val_fraction: float = 0.1,
    seed: int = 0,
    max_train_samples: int | None = None,
) -> Splits:
    """Row indices of the fit, validation and test samples of a benchmark.

    Args:
        data: the opened file.
        benchmark: e.g. "xsub"; `mans.preprocessing.splits.split_mask` raises ValueError naming the valid ones.
        val: "holdout" holds out `val_fraction` of the training performers (whole performers), "test"
            validates on the test split (the authors' protocol), "none" validates on nothing.
        val_fraction: share of training performers held out when `val == "holdout"`.
        seed: seed of the hold-out draw and of the `max_train_samples` subset.
        max_train_samples: keep at most this many fit rows (a seeded random subset, for quick tries).
    """
    is_train = np.asarray(splits.split_mask(data.meta, data.dataset, benchmark), dtype=bool)
    train_index = np.flatnonzero(is_train)
    test_index = np.flatnonzero(~is_train)
    if len(train_index) == 0 or len(test_index) == 0:
        raise ValueError(
            f"{data.path}: benchmark {benchmark!r} leaves {len(train_index)} training and {len(test_index)} "
            "test samples; expected both to be non-empty"
        )
    if val == "holdout":
        fit, held = splits.holdout_validation(
            train_index, np.asarray(data.meta["performer"])[train_index], fraction=val_fraction, seed=seed
        )
        fit, held = np.sort(np.asarray(fit)), np.sort(np.asarray(held))
    elif val == "test":
        fit, held = train_index, test_index
    elif val == "none":
        fit, held = train_index, np.zeros(0, dtype=np.int64)
    else:
        raise ValueError(f"val must be one of holdout, test, none. Received: val={val!r}")
    if max_train_samples is not None and max_train_samples < len(fit):
        if max_train_samples < 1:
            raise ValueError(f"max_train_samples must be >= 1. Received: {max_train_samples}")
        keep = np.random.default_rng((seed, 7)).choice(len(fit), size=max_train_samples, replace=False)
        fit = np.sort(fit[keep])
    return Splits(fit=fit, val=held, test=test_index, validation=val)


def split_bytes(path: str | os.PathLike, rows: np.ndarray) -> int:
    """Bytes that the samples `rows` of a file take in memory once loaded (`load_split`)."""
    reader = samples.ImageReader(path)
    try:
        return reader.stored_bytes(rows)
    finally:
        reader.close()


def total_memory_bytes() -> int | None:
    """Physical memory of this machine in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def should_load_in_memory(in_memory: str, nbytes: int) -> bool:
    """Decide whether to load a split of `nbytes` (`split_bytes`) into memory: "yes", "no" or "auto" (< 25 % of
    the RAM)."""
    if in_memory == "yes":
        return True
    if in_memory == "no":
        return False
    if in_memory != "auto":
        raise ValueError(f"in_memory must be one of auto, yes, no. Received: in_memory={in_memory!r}")
    total = total_memory_bytes()
    return total is not None and nbytes < IN_MEMORY_FRACTION * total


def load_rows(path: str | os.PathLike, rows: np.ndarray) -> np.ndarray:
    """The images of `rows` (ascending row indices) as one (len(rows), S, S, 3) float32 array."""
    return samples.read_images(path, rows)


def load_split(path: str | os.PathLike, rows: np.ndarray) -> samples.PackedImages | samples.DenseImages:
    """The samples `rows` (ascending) in memory as the file stores them (rows only, for a format 2 file), for
    `SkeletonBatches(x=...)`."""
    reader = samples.ImageReader(path)
    try:
        return reader.load(rows)
    finally:
        reader.close()


class SkeletonBatches(keras.utils.PyDataset):
    """Batches (x, y) of the rows `rows` of a mans HDF5 file, x (B, S, S, 3) float32, y (B,) int32 (or (B, K)
    float32 one-hot targets where `num_classes` is K).

    Two modes:
    - `shuffle_seed=None`: every row once, in file order; `num_batches` = ceil(n / batch_size)
      (validation, test, BN statistics).
    - `shuffle_seed=s`: an endless stream of epochs; epoch `e` (counted from `initial_epoch`) is the
      permutation `default_rng((s, e))` cut into `steps_per_epoch` batches. `num_batches` is None: pass
      `steps_per_epoch` to `fit`. Batch `i` of the stream is a pure function of `i`, so prefetching workers
      and a resumed run see exactly the batches an uninterrupted run sees.

    Args:
        path: the HDF5 file.
        rows: ascending row indices of the samples to serve.
        labels: (N,) labels of the whole file (indexed by row).
        batch_size: samples per batch.
        shuffle_seed: None for one ordered pass, else the seed of the per-epoch permutation.
        initial_epoch: the epoch that stream batch 0 belongs to (resume).
        max_steps: cap on the batches per epoch (quick tries), None for a whole epoch.
        drop_remainder: drop the last, smaller batch of each epoch (data-parallel training needs batches
            that split evenly over the devices).
        x: an in-memory copy of the rows' samples aligned with `rows`: `load_split`'s result, or an
            (len(rows), S, S, 3) array of images; None to read from the file.
        shard: (index, count): serve only every count-th sample of each batch, from the index-th on (a
            multi-process JAX run: each process feeds its own part of the global batch).
        num_classes: K for (B, K) one-hot targets, None for integer labels.
        mixup: shuffled mode with `num_classes` only: each sample becomes lam x + (1 - lam) x', its targets the
            same mix, x' another sample of its batch and lam ~ Beta(mixup, mixup) drawn per sample from
            `default_rng((shuffle_seed, epoch, step))` (so a resumed run mixes the same pairs); 0: off.
        workers, use_multiprocessing, max_queue_size: see `keras.utils.PyDataset`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        rows: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        shuffle_seed: int | None = None,
        initial_epoch: int = 0,
        max_steps: int | None = None,
        drop_remainder: bool = False,
        x: np.ndarray | samples.PackedImages | samples.DenseImages | None = None,
        shard: tuple[int, int] = (0, 1),
        num_classes: int | None = None,
        mixup: float = 0.0,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        self.path = str(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        if len(self.rows) == 0:
            raise ValueError(f"{path}: no samples to serve (an empty split)")
        if x is not None and len(x) != len(self.rows):
            raise ValueError(f"x holds {len(x)} images, expected one per row ({len(self.rows)})")
        self.labels = np.asarray(labels, dtype=np.int32)[self.rows]
        self.batch_size = int(batch_size)
        self.shuffle_seed = shuffle_seed
        self.initial_epoch = int(initial_epoch)
        self.x = samples.DenseImages(x) if isinstance(x, np.ndarray) else x
        self.shard = (int(shard[0]), int(shard[1]))
        if not 0 <= self.shard[0] < self.shard[1]:
            raise ValueError(f"shard must be (index, count) with 0 <= index < count. Received: {shard}")
        if mixup < 0 or (mixup and (num_classes is None or shuffle_seed is None)):
            raise ValueError(f"mixup must be >= 0 and needs num_classes and shuffle_seed. Received: mixup={mixup}")
        self.num_classes = num_classes
        self.mixup = float(mixup)
        n = len(self.rows)
        full = n // self.batch_size if drop_remainder and n >= self.batch_size else math.ceil(n / self.batch_size)
        self.steps_per_epoch = min(full, max_steps) if max_steps else full
        self._reader: samples.ImageReader | None = None
        self._pid: int | None = None
        self._order_epoch: int | None = None
        self._order: np.ndarray | None = None

    @property
    def num_batches(self) -> int | None:
        return None if self.shuffle_seed is not None else self.steps_per_epoch

    def __len__(self) -> int:
        return self.steps_per_epoch

    def positions(self, index: int) -> np.ndarray:
        """Positions (into `rows`, ascending) of the samples of batch `index` (this process's shard)."""
        if self.shuffle_seed is None:
            if not 0 <= index < self.steps_per_epoch:
                raise IndexError(f"batch {index} out of range [0, {self.steps_per_epoch})")
            chosen = np.arange(index * self.batch_size, min((index + 1) * self.batch_size, len(self.rows)))
        else:
            epoch, step = self.epoch_and_step(index)
            chosen = np.sort(self.epoch_order(epoch)[step * self.batch_size : (step + 1) * self.batch_size])
        return chosen[self.shard[0] :: self.shard[1]]

    def epoch_and_step(self, index: int) -> tuple[int, int]:
        """The epoch and the step within it of stream batch `index` (shuffled mode)."""
        return self.initial_epoch + index // self.steps_per_epoch, index % self.steps_per_epoch

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The permutation of positions used in `epoch` (shuffled mode)."""
        if self._order_epoch != epoch:
            self._order = np.random.default_rng((int(self.shuffle_seed), int(epoch))).permutation(len(self.rows))
            self._order_epoch = epoch
        return self._order

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pos = self.positions(int(index))
        if self.x is not None:
            images = self.x.images(pos)
        else:
            images = self._images_from_file().images(self.rows[pos])
        if self.num_classes is None:
            return images, self.labels[pos]
        targets = np.eye(self.num_classes, dtype=np.float32)[self.labels[pos]]
        if self.mixup:
            rng = np.random.default_rng((int(self.shuffle_seed), *self.epoch_and_step(int(index))))
            return mix_pairs(images, targets, self.mixup, rng)
        return images, targets

    def _images_from_file(self) -> samples.ImageReader:
        """The file's reader, opened once per process (h5py handles do not survive a fork)."""
        if self._reader is None or self._pid != os.getpid():
            self._reader = samples.ImageReader(self.path)
            self._pid = os.getpid()
        return self._reader

    def close(self) -> None:
        """Close the file handle of this process."""
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_reader"] = None
        state["_pid"] = None
        return state


def mix_pairs(
    images: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018) within a batch: sample i becomes lam_i x_i + (1 - lam_i) x_p(i), and so do its
    targets, for a random permutation p of the batch and lam_i ~ Beta(alpha, alpha).

    Zero padding (absent frames, bodies and joint columns) stays zero wherever both samples have it.
    """
    lam = rng.beta(alpha, alpha, size=len(images)).astype(np.float32)
    partner = rng.permutation(len(images))
    mixed = lam[:, None, None, None] * images + (1 - lam[:, None, None, None]) * images[partner]
    return mixed.astype(np.float32), lam[:, None] * targets + (1 - lam[:, None]) * targets[partner]


def _as_str(value: object) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)
