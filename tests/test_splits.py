"""mans.preprocessing.splits: the standard NTU split counts (docs/paper.md) on NTU's own lists of available samples."""

from __future__ import annotations

import numpy as np
import pytest

from mans.formats.ntu import parse_sample_name
from mans.preprocessing import splits


def metadata(path) -> dict[str, np.ndarray]:
    names = [parse_sample_name(line) for line in path.read_text().split()]
    return {
        key: np.array([getattr(name, key) for name in names], np.int16)
        for key in ("setup", "camera", "performer", "replication", "action")
    }


@pytest.mark.parametrize(
    "listing, dataset, split, train, test",
    [
        ("ntu60_available.txt", "ntu60", "xsub", 40091, 16487),
        ("ntu60_available.txt", "ntu60", "xview", 37646, 18932),
        ("ntu120_available.txt", "ntu120", "xsub", 63026, 50919),
        ("ntu120_available.txt", "ntu120", "xset", 54468, 59477),
    ],
)
def test_standard_split_counts(shared_ntu, listing, dataset, split, train, test):
    mask = splits.split_mask(metadata(shared_ntu / listing), dataset, split)
    assert mask.dtype == bool
    assert (int(mask.sum()), int((~mask).sum())) == (train, test)


def test_performer_lists():
    assert len(splits.XSUB_TRAIN_PERFORMERS_60) == 20
    assert len(splits.XSUB_TRAIN_PERFORMERS_120) == 53
    assert splits.XSUB_TRAIN_PERFORMERS_60 < splits.XSUB_TRAIN_PERFORMERS_120


def test_rules_on_hand_made_metadata():
    meta = {"performer": np.array([1, 3, 45, 106]), "camera": np.array([1, 2, 3, 1]),
            "setup": np.array([1, 2, 17, 32])}
    np.testing.assert_array_equal(splits.split_mask(meta, "ntu60", "xsub"), [True, False, False, False])
    np.testing.assert_array_equal(splits.split_mask(meta, "ntu120", "xsub"), [True, False, True, False])
    np.testing.assert_array_equal(splits.split_mask(meta, "ntu60", "xview"), [False, True, True, False])
    np.testing.assert_array_equal(splits.split_mask(meta, "ntu120", "xset"), [False, True, False, True])


def test_unknown_benchmark_or_dataset():
    meta = {"performer": np.array([1]), "camera": np.array([1]), "setup": np.array([1])}
    with pytest.raises(ValueError, match=r"\['xsub', 'xview'\].*'xset'"):
        splits.split_mask(meta, "ntu60", "xset")
    with pytest.raises(ValueError, match="ntu120"):
        splits.split_mask(meta, "ntu90", "xsub")
    with pytest.raises(ValueError, match="'camera'"):
        splits.split_mask({"performer": np.array([1])}, "ntu60", "xview")


def test_holdout_validation_holds_out_whole_performers():
    rng = np.random.default_rng(0)
    performers = rng.choice(sorted(splits.XSUB_TRAIN_PERFORMERS_60), size=2000)
    train_index = np.sort(rng.choice(10_000, size=2000, replace=False))
    fit, val = splits.holdout_validation(train_index, performers, fraction=0.1, seed=3)
    assert len(fit) + len(val) == 2000 and not np.intersect1d(fit, val).size
    assert np.all(np.diff(fit) > 0) and np.all(np.diff(val) > 0)  # order kept
    group = dict(zip(train_index, performers, strict=True))
    held = {group[i] for i in val}
    assert len(held) == 2  # round(0.1 * 20)
    assert held.isdisjoint(group[i] for i in fit)
    again = splits.holdout_validation(train_index, performers, fraction=0.1, seed=3)
    np.testing.assert_array_equal(again[1], val)
    other = splits.holdout_validation(train_index, performers, fraction=0.1, seed=4)
    assert not np.array_equal(other[1], val)


def test_holdout_validation_edge_cases():
    index = np.arange(6)
    fit, val = splits.holdout_validation(index, np.array([1, 1, 2, 2, 3, 3]), fraction=0.0)
    assert len(fit) == 6 and len(val) == 0
    fit, val = splits.holdout_validation(index, np.array([1, 1, 2, 2, 3, 3]), fraction=0.01)
    assert len(val) == 2  # at least one group
    with pytest.raises(ValueError, match="groups\\[train_index\\]"):
        splits.holdout_validation(index, np.arange(10))
    with pytest.raises(ValueError, match="at least 2 groups"):
        splits.holdout_validation(index, np.ones(6))
    with pytest.raises(ValueError, match="fraction"):
        splits.holdout_validation(index, np.arange(6), fraction=1.0)
