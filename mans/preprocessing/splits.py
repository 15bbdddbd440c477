"""Benchmark splits from sample metadata, by the rules of a dataset's description, and a validation hold-out.

A split is a rule on the grouping columns (`mans.preprocessing.description.Split`): `train` maps columns to the values
that train (every column must match), the other rows test; `leave_one_out` names a column, and fold
"<split>-<value>" tests on that value and trains on the others. The performer lists of NTU RGB+D live in
its descriptions (`mans/preprocessing/descriptions/ntu60.json`, `ntu120.json`) and here (STYLE.md section 5). Counts on
NTU's own lists of available samples (docs/paper.md): NTU-60 xsub 40,091 / 16,487, xview 37,646 / 18,932;
NTU-120 xsub 63,026 / 50,919, xset 54,468 / 59,477 (train / test).

UT-Kinect and MSR Action3D store their subject (1-10) in the "performer" column: xsub trains on the odd subjects and
tests on the even ones; "loso-K" (leave one subject out) tests on subject K and trains on the other
nine, and "loso" names the ten folds together (training and evaluation run them one by one). A user's
"subject" column is stored as "performer" too (`stored_column`), so the validation hold-out holds subjects out.
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


def stored_column(column: str) -> str:
    """The stored column of a description's grouping column: "subject" is stored as "performer"."""
    return "performer" if column == "subject" else column


def folds(benchmark: str, dataset=None) -> tuple[str, ...]:
    """The single-split benchmarks that `benchmark` stands for: its folds for a leave-one-out split, else itself.

    dataset: a `DatasetSpec` or a dataset name; None: "loso" is the ten folds "loso-1" ... "loso-10" of
    UT-Kinect and MSR Action3D.
    """
    if dataset is None:
        return LOSO_FOLDS if benchmark == "loso" else (benchmark,)
    spec = _spec(dataset)
    rule = spec.description.splits.get(benchmark)
    if rule is None or rule.leave_one_out is None:
        return (benchmark,)
    return tuple(f"{benchmark}-{value}" for value in rule.values or ())


def _spec(dataset):
    from mans.preprocessing import datasets  # datasets builds on this module

    return datasets.get_dataset(dataset) if isinstance(dataset, str) else dataset


def _column(meta: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    key = stored_column(key)
    if key not in meta:
        raise ValueError(f"expected a metadata column {key!r}, found only {sorted(meta)}")
    column = np.asarray(meta[key])
    return column.astype(str) if column.dtype.kind in "SUO" else column


def _matches(column: np.ndarray, values) -> np.ndarray:
    if column.dtype.kind in "SU":
        return np.isin(column, [str(value) for value in values])
    return np.isin(column, [int(value) for value in values if str(value).lstrip("-").isdigit()])


def rule_mask(meta: Mapping[str, np.ndarray], rule, fold: str | None = None) -> np.ndarray:
    """(N,) bool, True = train, of one `Split` rule; `fold`: the left-out value of a leave-one-out rule."""
    if rule.train is not None:
        mask = np.ones(len(next(iter(meta.values()))), bool)
        for column, values in rule.train.items():
            mask &= _matches(_column(meta, column), values)
        return mask
    return ~_matches(_column(meta, rule.leave_one_out), [fold])


def split_mask(meta: Mapping[str, np.ndarray], dataset, benchmark: str) -> np.ndarray:
    """True where a sample belongs to the training side of `benchmark`.

    Args: meta: the columns of `storage.read_metadata` ("performer", "camera", "setup", a description's own
        grouping columns). dataset: a dataset name ("ntu60", "utkinect", a converted file's own) or its
        `DatasetSpec`. benchmark: one of the dataset's benchmarks ("xsub", "xview", "loso-3", ...).
    Returns: (N,) bool, True = train, False = test.
    """
    spec = _spec(dataset)
    if benchmark not in spec.benchmarks:
        raise ValueError(
            f"expected a benchmark of {spec.name} among {list(spec.benchmarks)}, found {benchmark!r}"
        )
    rule = spec.split(benchmark)
    if rule.leave_one_out is not None and benchmark in spec.description.splits:
        names = folds(benchmark, spec)
        raise ValueError(f"'{benchmark}' is {len(names)} folds: expected one of {', '.join(names)} for a single split")
    fold = benchmark.rsplit("-", 1)[1] if rule.leave_one_out is not None else None
    return rule_mask(meta, rule, fold)


def holdout_validation(
    train_index: np.ndarray, groups: np.ndarray, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole groups (performers) of the training side for validation.

    The demo validated on the test split (docs/paper.md, step 7); this is the corrected choice.
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
