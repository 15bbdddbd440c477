"""mans.training.data: opening mans HDF5 files, benchmark splits, and the batch order that resuming relies on."""

import importlib.util
import pickle

import h5py
import numpy as np
import pytest

from mans.preprocessing import samples
from mans.training import data as data_lib


def load_script(repo_root, name: str):
    """A script at the repository root (process_data.py, train_MANs.py, evaluate.py) as a module."""
    spec = importlib.util.spec_from_file_location(name, repo_root / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_synthetic_h5(repo_root, folder, samples: int = 80, actions: int = 10):
    """An HDF5 file made by the real pipeline: process_data.py --synthetic (in-process, one worker)."""
    process_data = load_script(repo_root, "process_data")
    out = folder / "synthetic.h5"
    argv = ["--synthetic", str(folder / "raw"), "--samples", str(samples), "--actions", str(actions)]
    assert process_data.main([*argv, "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def h5(repo_root, tmp_path_factory):
    return make_synthetic_h5(repo_root, tmp_path_factory.mktemp("data"), samples=80)


def test_open_data_reads_columns_and_attrs(h5):
    data = data_lib.open_data(h5)
    assert data.num_samples == 80
    assert data.size == 50 and data.num_classes == 60 and data.dataset == "ntu60"
    assert len(data.class_names) == 60 and data.class_names[0] == "drink water"
    assert data.labels.dtype == np.int32 and set(data.labels) <= set(range(10))
    assert list(data.names) == sorted(data.names)


def test_open_data_errors(tmp_path, h5):
    with pytest.raises(FileNotFoundError):
        data_lib.open_data(tmp_path / "absent.h5")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="notes.h5"):
        data_lib.open_data(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros((2, 50, 50, 3), np.float32)
    with pytest.raises(ValueError, match="other.h5"):
        data_lib.open_data(other)


@pytest.mark.parametrize("val", ["holdout", "test", "none"])
def test_select_splits(h5, val):
    data = data_lib.open_data(h5)
    splits = data_lib.select_splits(data, "xsub", val=val, seed=3)
    performer = data.meta["performer"]
    train_side = np.isin(performer, [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38])
    assert np.array_equal(splits.test, np.flatnonzero(~train_side))
    for rows in (splits.fit, splits.val, splits.test):
        assert np.all(np.diff(rows) > 0)
    if val == "holdout":
        assert len(splits.val) > 0
        assert not set(performer[splits.fit]) & set(performer[splits.val])  # whole performers held out
        assert np.array_equal(np.sort(np.r_[splits.fit, splits.val]), np.flatnonzero(train_side))
    elif val == "test":
        assert np.array_equal(splits.val, splits.test)
    else:
        assert len(splits.val) == 0 and np.array_equal(splits.fit, np.flatnonzero(train_side))


def test_select_splits_subset_and_unknown_benchmark(h5):
    data = data_lib.open_data(h5)
    full = data_lib.select_splits(data, "xview", val="none")
    subset = data_lib.select_splits(data, "xview", val="none", max_train_samples=7, seed=1)
    assert len(subset.fit) == 7 and set(subset.fit) <= set(full.fit)
    with pytest.raises(ValueError, match="xset"):
        data_lib.select_splits(data, "xset")


def test_load_rows_matches_file(h5):
    rows = np.array([0, 3, 4, 40, 79])
    expected = samples.read_images(h5)[rows]
    assert np.array_equal(data_lib.load_rows(h5, rows), expected)


def test_in_memory_decision():
    assert data_lib.should_load_in_memory("yes", 10**15)
    assert not data_lib.should_load_in_memory("no", 1)
    assert data_lib.should_load_in_memory("auto", 10 * 30_000)
    assert not data_lib.should_load_in_memory("auto", 10**15)
    with pytest.raises(ValueError, match="in_memory"):
        data_lib.should_load_in_memory("maybe", 1)


def batches(h5, rows, **kwargs):
    data = data_lib.open_data(h5)
    return data_lib.SkeletonBatches(h5, rows, data.labels, 8, **kwargs)


def test_ordered_pass_covers_rows_once(h5):
    rows = np.arange(0, 80, 3)
    ds = batches(h5, rows)
    assert ds.num_batches == len(ds) == 4
    labels = np.concatenate([ds[i][1] for i in range(len(ds))])
    assert np.array_equal(labels, data_lib.open_data(h5).labels[rows])


def test_shuffled_stream_is_a_pure_function_of_seed_and_epoch(h5):
    rows = np.arange(60)
    ds = batches(h5, rows, shuffle_seed=5)
    assert ds.num_batches is None and ds.steps_per_epoch == 8
    epoch0 = np.concatenate([ds.positions(i) for i in range(8)])
    epoch1 = np.concatenate([ds.positions(i) for i in range(8, 16)])
    assert sorted(epoch0) == sorted(epoch1) == list(range(60))  # each epoch sees every sample once
    assert not np.array_equal(epoch0, epoch1)
    resumed = batches(h5, rows, shuffle_seed=5, initial_epoch=1)  # a run resumed at epoch 1
    x_resumed, y_resumed = resumed[3]
    x_full, y_full = ds[11]
    assert np.array_equal(x_resumed, x_full) and np.array_equal(y_resumed, y_full)
    x_memory, y_memory = batches(h5, rows, shuffle_seed=5, x=data_lib.load_split(h5, rows))[11]
    assert np.array_equal(x_memory, x_full) and np.array_equal(y_memory, y_full)
    x_dense, _ = batches(h5, rows, shuffle_seed=5, x=data_lib.load_rows(h5, rows))[11]
    assert np.array_equal(x_dense, x_full)
    assert np.array_equal(ds[11][0], pickle.loads(pickle.dumps(ds))[11][0])  # worker processes
    ds.close()


def test_step_cap_and_drop_remainder(h5):
    rows = np.arange(20)
    assert batches(h5, rows, shuffle_seed=0, max_steps=2).steps_per_epoch == 2
    assert batches(h5, rows, shuffle_seed=0).steps_per_epoch == 3
    assert batches(h5, rows, shuffle_seed=0, drop_remainder=True).steps_per_epoch == 2
    with pytest.raises(ValueError, match="empty"):
        batches(h5, rows[:0])


def test_process_shards_partition_each_batch(h5):
    rows = np.arange(40)
    whole = batches(h5, rows, shuffle_seed=2)
    parts = [batches(h5, rows, shuffle_seed=2, shard=(i, 2)) for i in range(2)]
    for index in (0, 4, 7):
        pieces = np.concatenate([part.positions(index) for part in parts])
        assert sorted(pieces) == list(whole.positions(index))
    with pytest.raises(ValueError, match="shard"):
        batches(h5, rows, shard=(2, 2))


def test_mixup_mixes_pairs_of_a_batch_and_a_resumed_run_mixes_the_same(h5):
    """Each mixed sample is lam x_i + (1 - lam) x_j of two samples of its batch, with the same lam on its
    one-hot targets (rows summing to 1); batch i is still a pure function of i; without mixup the targets
    are the one-hot labels."""
    rows, labels = np.arange(60), data_lib.open_data(h5).labels
    plain = batches(h5, rows, shuffle_seed=5, num_classes=10)
    mixed = batches(h5, rows, shuffle_seed=5, num_classes=10, mixup=0.4)
    (x, y), (x_mix, y_mix) = plain[11], mixed[11]
    np.testing.assert_array_equal(y, np.eye(10, dtype=np.float32)[labels[rows[plain.positions(11)]]])
    np.testing.assert_allclose(y_mix.sum(axis=1), 1, rtol=1e-6)
    assert not np.allclose(x_mix, x)
    for i in range(len(x)):  # solve x_mix[i] = lam x[i] + (1 - lam) x[j] for some partner j
        fits = []
        for j in range(len(x)):
            d = (x[i] - x[j]).ravel()
            lam = 1.0 if not d.any() else float(d @ (x_mix[i] - x[j]).ravel() / (d @ d))
            if np.allclose(x_mix[i], lam * x[i] + (1 - lam) * x[j], atol=1e-5):
                fits.append((j, lam))
        assert fits, f"sample {i} is no mix of two samples of its batch"
        j, lam = fits[0]
        np.testing.assert_allclose(y_mix[i], lam * y[i] + (1 - lam) * y[j], atol=1e-5)
    resumed = batches(h5, rows, shuffle_seed=5, num_classes=10, mixup=0.4, initial_epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(resumed[3], mixed[11], strict=True))
    with pytest.raises(ValueError, match="mixup"):
        batches(h5, rows, mixup=0.4, num_classes=10)  # an ordered pass is never mixed
    with pytest.raises(ValueError, match="mixup"):
        batches(h5, rows, shuffle_seed=5, mixup=0.4)  # mixup needs targets
