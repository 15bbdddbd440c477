"""Benchmark splits of NTU RGB+D 60 / 120, UT-Kinect and MSR Action3D from sample metadata, and a validation hold-out.

The performer lists live here and only here (STYLE.md section 5). Counts on NTU's own lists of
available samples (REFERENCE.md): NTU-60 xsub 40,091 / 16,487, xview 37,646 / 18,932; NTU-120 xsub
63,026 / 50,919, xset 54,468 / 59,477 (train / test).

UT-Kinect and MSR Action3D store their subject (1-10) in the "performer" column: xsub trains on the odd subjects and
tests on the even ones; "loso-K" (leave one subject out) tests on subject K and trains on the other
nine, and "loso" names the ten folds together (training and evaluation run them one by one).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

XSUB_TRAIN_PERFORMERS_60: frozenset[int] = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
)
XSUB_TRAIN_PERFORMERS_120: frozenset[int] = XSUB_TRAIN_PERFORMERS_60 | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
)
XVIEW_TRAIN_CAMERAS: frozenset[int] = frozenset((2, 3))

UTKINECT_SUBJECTS = tuple(range(1, 11))
LOSO_FOLDS = tuple(f"loso-{subject}" for subject in UTKINECT_SUBJECTS)

BENCHMARKS: Mapping[str, tuple[str, ...]] = {
    "ntu60": ("xsub", "xview"),
    "ntu120": ("xsub", "xset"),
    "utkinect": ("xsub", "loso", *LOSO_FOLDS),
    "msr-action3d": ("xsub", "loso", *LOSO_FOLDS),
}
# Datasets of ten subjects split by subject: xsub trains on the odd ones (UT-Kinect's protocol, and MSR
# Action3D's standard cross-subject protocol: subjects 1 3 5 7 9 train, all 20 actions).
SUBJECT_DATASETS = frozenset({"utkinect", "msr-action3d"})


def folds(benchmark: str) -> tuple[str, ...]:
    """The single-split benchmarks that `benchmark` stands for: ("loso-1", ..., "loso-10") for "loso"."""
    return LOSO_FOLDS if benchmark == "loso" else (benchmark,)


def _column(meta: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in meta:
        raise ValueError(f"expected a metadata column {key!r}, found only {sorted(meta)}")
    return np.asarray(meta[key])


def split_mask(meta: Mapping[str, np.ndarray], dataset: str, benchmark: str) -> np.ndarray:
    """True where a sample belongs to the training side of `benchmark`.

    Args: meta: columns of 1-based numbers as in the sample name ("performer", "camera", "setup"; the
        columns of `storage.read_metadata`). dataset: "ntu60", "ntu120" or "utkinect". benchmark:
        "xsub", "xview" (NTU-60); "xsub", "xset" (NTU-120); "xsub", "loso-K" (UT-Kinect).
    Returns: (N,) bool, True = train, False = test.
    """
    if dataset not in BENCHMARKS:
        raise ValueError(f"expected a dataset among {sorted(BENCHMARKS)}, found {dataset!r}")
    if benchmark not in BENCHMARKS[dataset]:
        raise ValueError(
            f"expected a benchmark of {dataset} among {list(BENCHMARKS[dataset])}, found {benchmark!r}"
        )
    if benchmark == "loso":
        raise ValueError(f"'loso' is ten folds: expected one of {', '.join(LOSO_FOLDS)} for a single split")
    if dataset in SUBJECT_DATASETS:
        subject = _column(meta, "performer")
        if benchmark == "xsub":
            return subject % 2 == 1  # odd subjects train
        return subject != int(benchmark.removeprefix("loso-"))
    if benchmark == "xsub":
        train = XSUB_TRAIN_PERFORMERS_60 if dataset == "ntu60" else XSUB_TRAIN_PERFORMERS_120
        return np.isin(_column(meta, "performer"), list(train))
    if benchmark == "xview":
        return np.isin(_column(meta, "camera"), list(XVIEW_TRAIN_CAMERAS))
    return _column(meta, "setup") % 2 == 0  # xset: even setups train


def holdout_validation(
    train_index: np.ndarray, groups: np.ndarray, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole groups (performers) of the training side for validation.

    The demo validated on the test split (REFERENCE.md, step 7); this is the corrected choice.
    Args: train_index: (n,) sample indices of the training side. groups: (n,) the group of each entry
        of `train_index` (pass `meta["performer"][train_index]`). fraction: share of the groups held
        out, rounded, at least one when > 0. seed: which groups (numpy default_rng).
    Returns: (fit_index, val_index), subsets of `train_index` in its order.
    """
    train_index = np.asarray(train_index)
    groups = np.asarray(groups)
    if groups.shape != train_index.shape:
        raise ValueError(
            f"expected one group per training index ({train_index.shape}), found groups of shape "
            f"{groups.shape}; pass groups[train_index]"
        )
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"expected 0 <= fraction < 1, found fraction={fraction}")
    unique = np.unique(groups)
    if fraction == 0.0 or len(unique) == 0:
        return train_index, train_index[:0]
    if len(unique) < 2:
        raise ValueError(f"expected at least 2 groups to hold one out, found {len(unique)}")
    count = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    held = np.random.default_rng(seed).permutation(unique)[:count]
    is_val = np.isin(groups, held)
    return train_index[~is_val], train_index[is_val]
