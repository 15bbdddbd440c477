"""Tests for mans.preprocessing.synthetic: files in the exact NTU format that read back, splits, noise, determinism."""

import re

import numpy as np
import pytest

from mans.formats import ntu as skeleton_io
from mans.formats.ntu import parse_sample_name, parse_skeleton_bytes, read_skeleton
from mans.preprocessing.splits import split_mask
from mans.preprocessing.synthetic import render_sample, sample_names, write_synthetic_dataset

TWO_PERSON = set(range(50, 61)) | set(range(106, 121))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """30 noisy files over 60 actions: some two-person ones (actions 50-60 are reached from index 49)."""
    out = tmp_path_factory.mktemp("synthetic")
    names = [str(name) for name in sample_names(60, "ntu60")[25:55]]
    paths = [out / f"{name}.skeleton" for name in names]
    for i, (name, path) in enumerate(zip(names, paths, strict=True)):
        path.write_bytes(render_sample(name, (3, i), frames=(20, 60)).encode("ascii"))
    return paths


def test_files_read_back_in_the_exact_format(dataset):
    for path in dataset:
        data = path.read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n") and data.endswith(b"\r\n")
        lines = data.decode("ascii").split("\r\n")[:-1]
        skeleton = read_skeleton(path)
        assert 20 <= skeleton.num_frames <= 60
        body_lines = [line for line in lines if len(line.split()) == 10]
        assert len(body_lines) == skeleton.body_counts.sum()
        assert all(re.fullmatch(r"7205759403\d{7}", line.split()[0]) for line in body_lines)
        joint_lines = [line for line in lines if len(line.split()) == 12]
        assert len(joint_lines) == 25 * skeleton.body_counts.sum()
        listed = skeleton.body_ids[skeleton.body_ids > 0]
        assert listed.min() >= 10**16 and listed.max() < 10**17  # 17 digits
        assert set(np.unique(skeleton.tracking)) <= {0, 1, 2}
        present = skeleton.coords[skeleton.body_counts > 0, 0]
        assert 1.5 < np.median(present[..., 2]) < 5.0  # metres in front of the camera


def test_values_are_printed_like_ntu():
    text = render_sample("S001C002P003R001A023", 0, frames=(5, 5), noise=False)
    joint = text.split("\r\n")[4].split()  # frame count, body count, info line, joint count, joint 0
    assert len(joint) == 12 and joint[-1] in {"0", "1", "2"}
    mantissas = [field.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0") for field in joint[:11]]
    assert all(len(digits) <= 7 for digits in mantissas)  # "%.7g", as NTU prints them
    depth_x, depth_y, colour_x, colour_y = map(float, joint[3:7])
    assert 0 < depth_x < 512 and 0 < depth_y < 424 and 0 < colour_x < 1920 and 0 < colour_y < 1080
    orientation = np.array(joint[7:11], float)
    assert abs(np.linalg.norm(orientation) - 1) < 1e-5


def test_two_person_actions_have_two_bodies():
    for action in (1, 49, 50, 60):
        name = f"S001C001P001R001A{action:03d}"
        skeleton = parse_skeleton_bytes(render_sample(name, 0, frames=(30, 30), noise=False).encode())
        assert set(skeleton.body_counts) == {2 if action in TWO_PERSON else 1}
        assert len(np.unique(skeleton.body_ids)) == skeleton.body_counts.max()
    ntu120 = parse_skeleton_bytes(render_sample("S020C001P050R001A110", 0, frames=(30, 30), noise=False).encode())
    assert set(ntu120.body_counts) == {2}


def test_noise_adds_sensor_artefacts(dataset):
    skeletons = [read_skeleton(path) for path in dataset]
    counts = np.concatenate([s.body_counts for s in skeletons])
    assert (counts == 0).any() and (counts >= 3).any()
    assert any(s.body_counts[0] == 0 or s.body_counts[-1] == 0 for s in skeletons)
    assert any((s.tracking[s.body_counts > 0, 0] == 1).any() for s in skeletons)
    singles = [s for path, s in zip(dataset, skeletons, strict=True) if parse_sample_name(path).action < 50]
    assert any(len(np.unique(s.body_ids[:, 0][s.body_counts > 0])) > 1 for s in singles)  # ID switch or spurious


def test_counts_names_and_determinism(tmp_path):
    paths = write_synthetic_dataset(tmp_path / "a", 12, num_actions=4, seed=5, frames=(10, 20))
    assert len(paths) == len(set(paths)) == 12 and all(path.exists() for path in paths)
    names = [parse_sample_name(path) for path in paths]
    assert sorted({name.action for name in names}) == [1, 2, 3, 4]
    assert all(10 <= read_skeleton(path).num_frames <= 20 for path in paths)
    again = write_synthetic_dataset(tmp_path / "b", 12, num_actions=4, seed=5, frames=(10, 20), workers=2)
    assert [path.name for path in again] == [path.name for path in paths]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(paths, again, strict=True))
    other = write_synthetic_dataset(tmp_path / "c", 12, num_actions=4, seed=6, frames=(10, 20))
    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(paths, other, strict=True))


@pytest.mark.parametrize("dataset_name, benchmarks", [("ntu60", ("xsub", "xview")), ("ntu120", ("xsub", "xset"))])
@pytest.mark.parametrize("samples, actions", [(50, None), (50, 10), (20, 10), (8, 2)])
def test_every_split_has_train_and_test(dataset_name, benchmarks, samples, actions):
    names = sample_names(samples, dataset_name, actions)
    assert len(set(names)) == samples
    meta = {key: np.array([getattr(name, key) for name in names]) for key in ("performer", "camera", "setup")}
    limits = {"ntu60": (17, 40, 60), "ntu120": (32, 106, 120)}[dataset_name]
    assert meta["setup"].max() <= limits[0] and meta["performer"].max() <= limits[1]
    assert max(name.action for name in names) <= (actions or limits[2])
    for benchmark in benchmarks:
        train = split_mask(meta, dataset_name, benchmark)
        assert train.any() and not train.all(), benchmark
    if actions and samples >= 4 * actions:  # then every class has train and test samples too
        labels = np.array([name.action for name in names])
        for benchmark in benchmarks:
            train = split_mask(meta, dataset_name, benchmark)
            assert set(labels[train]) == set(labels[~train]) == set(range(1, actions + 1)), benchmark


def test_many_samples_per_action_stay_unique():
    names = sample_names(3000, "ntu60", 2)
    assert len(set(names)) == 3000


def _motion_features(skeleton) -> np.ndarray:
    """Rotation-invariant statistics: per joint, mean and spread of its distance to the spine base."""
    joints = skeleton.coords[skeleton.body_counts > 0, 0]  # (T, 25, 3) first listed body
    distance = np.linalg.norm(joints - joints[:, :1], axis=-1)  # (T, 25)
    height = joints[..., 1] - joints[:, :1, 1]
    return np.concatenate([distance.std(0), distance.mean(0), height.std(0)])


def test_actions_have_distinct_statistics():
    """Nearest class mean on simple statistics beats chance (10 %) by far on unseen performers."""
    names = sample_names(80, "ntu60", 10)
    features = np.array(
        [_motion_features(parse_skeleton_bytes(render_sample(n, (0, i), frames=(40, 80)).encode()))
         for i, n in enumerate(names)]
    )  # fmt: skip
    labels = np.array([name.action for name in names])
    fit = np.arange(len(names)) < 40
    means = np.array([features[fit & (labels == a)].mean(0) for a in range(1, 11)])
    distances = ((features[~fit, None] - means[None]) ** 2).sum(-1)  # (test, classes)
    accuracy = np.mean(1 + distances.argmin(1) == labels[~fit])
    assert accuracy >= 0.6


def test_fast_and_careful_parsers_agree():
    data = render_sample("S001C001P001R001A055", 1, frames=(30, 30)).encode()
    reader = skeleton_io._Reader("x", data)
    layout = reader.walk()
    fast = reader.joints_fast(layout.joint_starts)
    assert fast is not None  # NTU-formatted text takes the fast path
    np.testing.assert_allclose(fast, reader.joints_checked(layout.joint_starts), rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dataset": "ntu90"}, "unknown dataset"),
        ({"num_actions": 61}, "num_actions must be in 1..60"),
        ({"num_actions": 0}, "num_actions must be in 1..60"),
        ({"frames": (0, 5)}, "frames must be"),
        ({"frames": (9, 5)}, "frames must be"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_synthetic_dataset(tmp_path, 3, **kwargs)


def test_bad_sample_count(tmp_path):
    with pytest.raises(ValueError, match="samples must be >= 1"):
        write_synthetic_dataset(tmp_path, 0)
