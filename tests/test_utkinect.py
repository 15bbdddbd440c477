"""mans.formats.utkinect: the label file, the joint files and the cutting of segments, on hand-made folders."""

import pathlib

import numpy as np
import pytest

from mans.formats import utkinect


def joint_line(frame: int, value: float) -> str:
    numbers = " ".join(f"{value + 0.001 * k:.6f}" for k in range(60))
    return f"{frame} {numbers}  "


def make_folder(root: pathlib.Path, labels: str, recordings: dict[str, list[tuple[int, float]]]) -> pathlib.Path:
    (root / "joints").mkdir(parents=True)
    (root / "actionLabel.txt").write_text(labels)
    for sequence, lines in recordings.items():
        text = "\n".join(joint_line(frame, value) for frame, value in lines) + "\n"
        (root / "joints" / f"joints_{sequence}.txt").write_text(text)
    return root


LABELS = """s01_e01
walk: 10 14 \nsitDown: 14 16
standUp: 18 16
pickUp: 20 22
carry:  NaN NaN
throw: 24 24
push: 26 28
pull: 28 30
waveHands: 32 34
clapHands: 36 38
"""


def recording() -> list[tuple[int, float]]:
    lines = [(frame, float(frame)) for frame in range(10, 40, 2)]
    lines.insert(3, (14, 99.0))  # a repeated frame number with other coordinates
    return lines


def test_labels_skip_nan_and_keep_order(tmp_path):
    folder = make_folder(tmp_path, LABELS, {"s01_e01": recording()})
    segments, skipped = utkinect.read_action_labels(folder / "actionLabel.txt")
    assert [s.name for s in segments][:3] == ["s01_e01_walk", "s01_e01_sitDown", "s01_e01_standUp"]
    assert len(segments) == 9
    assert skipped == [("s01_e01_carry", "no-segment")]
    assert segments[0].start == 10 and segments[0].end == 14  # trailing spaces ignored
    assert segments[0].subject == 1 and segments[0].episode == 1 and segments[0].label == 0


def test_segment_keeps_first_line_of_a_repeated_frame(tmp_path):
    folder = make_folder(tmp_path, LABELS, {"s01_e01": recording()})
    samples = {s.segment.name: s.skeleton for s in utkinect.iter_samples(folder)}
    walk = samples["s01_e01_walk"]
    assert walk.coords.shape == (3, 1, 20, 3)  # frames 10, 12, 14 (14 twice in the file: first kept)
    np.testing.assert_allclose(walk.coords[:, 0, 0, 0], [10.0, 12.0, 14.0])
    np.testing.assert_array_equal(walk.times, [10.0, 12.0, 14.0])  # the camera's frame numbers
    assert walk.body_counts.tolist() == [1, 1, 1]
    # ranges may touch or overlap, and an end may come before its start
    np.testing.assert_allclose(samples["s01_e01_sitDown"].coords[:, 0, 0, 0], [14.0, 16.0])
    np.testing.assert_allclose(samples["s01_e01_standUp"].coords[:, 0, 0, 0], [16.0, 18.0])
    np.testing.assert_allclose(samples["s01_e01_throw"].coords[:, 0, 0, 0], [24.0])


def test_joint_layout_is_x_y_z_per_joint(tmp_path):
    folder = make_folder(tmp_path, LABELS, {"s01_e01": recording()})
    frames, coords = utkinect.read_joints(folder / "joints" / "joints_s01_e01.txt")
    assert coords.shape == (16, 20, 3) and coords.dtype == np.float32
    np.testing.assert_allclose(coords[0, 1], [10.003, 10.004, 10.005], rtol=1e-6)
    assert frames[:4].tolist() == [10, 12, 14, 14]


def test_missing_label_file_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="actionLabel.txt"):
        utkinect.read_action_labels(tmp_path / "actionLabel.txt")


def test_sequence_without_joints(tmp_path):
    folder = make_folder(tmp_path, LABELS, {})
    with pytest.raises(FileNotFoundError, match="joints_s01_e01.txt"):
        list(utkinect.iter_samples(folder))
    (folder / "joints" / "joints_s01_e01.txt").write_text("")
    with pytest.raises(ValueError, match="no joints"):
        list(utkinect.iter_samples(folder))


def test_label_outside_the_recording(tmp_path):
    labels = LABELS.replace("clapHands: 36 38", "clapHands: 500 520")
    folder = make_folder(tmp_path, labels, {"s01_e01": recording()})
    with pytest.raises(ValueError, match=r"clapHands \[500, 520\] lies outside the recording \(frames 10-38\)"):
        list(utkinect.iter_samples(folder))


def test_bad_label_lines(tmp_path):
    (tmp_path / "actionLabel.txt").write_text("s01_e01\njump: 1 2\n")
    with pytest.raises(ValueError, match="line 2: expected one of walk"):
        utkinect.read_action_labels(tmp_path / "actionLabel.txt")
    (tmp_path / "actionLabel.txt").write_text("walk: 1 2\n")
    with pytest.raises(ValueError, match="line 1: expected a sequence name"):
        utkinect.read_action_labels(tmp_path / "actionLabel.txt")


def test_wrong_number_of_joint_values(tmp_path):
    (tmp_path / "joints_s01_e01.txt").write_text("1 0.1 0.2 0.3\n")
    with pytest.raises(ValueError, match="expected 61 numbers per line"):
        utkinect.read_joints(tmp_path / "joints_s01_e01.txt")


def test_synthetic_folder_through_process_data(tmp_path, repo_root):
    import subprocess
    import sys

    from mans.preprocessing import splits, storage

    out = tmp_path / "utk.h5"
    command = [sys.executable, str(repo_root / "process_data.py"), "--synthetic", str(tmp_path / "utk"),
               "--dataset", "utkinect", "--out", str(out), "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "kept 199 of 200" in result.stdout and "no-segment 1" in result.stdout
    meta, attrs = storage.read_metadata(out)
    assert attrs["dataset"] == "utkinect" and attrs["num_classes"] == 10
    assert attrs["joint_layout"] == {"bodies": 1, "joints": 20, "padded_to": 50}
    assert attrs["class_names"][8] == "waveHands"
    assert len(meta["name"]) == 199 and "s01_e01_carry" not in set(meta["name"])
    assert sorted(set(meta["performer"].tolist())) == list(range(1, 11))
    assert sorted(set(meta["replication"].tolist())) == [1, 2]
    assert np.bincount(meta["label"]).tolist() == [20, 20, 20, 20, 19, 20, 20, 20, 20, 20]
    from mans.preprocessing import samples

    x = samples.read_images(out, np.arange(5))
    assert x.shape == (5, 50, 50, 3)
    # 20 joint columns, centred like the frames: 15 zero columns before and 15 after (docs/paper.md step 6)
    assert np.abs(x[:, :, 15:35]).sum(axis=(0, 1)).min() > 0 and not x[:, :, :15].any() and not x[:, :, 35:].any()
    train = splits.split_mask(meta, "utkinect", "xsub")
    assert set(meta["performer"][train]) == {1, 3, 5, 7, 9}
    fold = splits.split_mask(meta, "utkinect", "loso-10")
    assert set(meta["performer"][~fold]) == {10} and fold.sum() == 199 - 20
    with pytest.raises(ValueError, match="'loso' is 10 folds"):
        splits.split_mask(meta, "utkinect", "loso")
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr


def test_utkinect_defaults_train_and_evaluate_end_to_end(tmp_path, repo_root, capsys):
    """Synthetic UT-Kinect folder -> process_data.py -> a short train_MANs.py run -> evaluate.py in a fresh
    process. Training runs in this process, without TARM: the dataset's defaults are the point here (a real
    UT-Kinect run through the scripts, TARM included: tests/test_real_data.py)."""
    import json
    import subprocess
    import sys

    from test_data import load_script

    def script(*argv: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, *argv], cwd=repo_root, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    data, run = tmp_path / "utk.h5", tmp_path / "run"
    script("process_data.py", "--synthetic", str(tmp_path / "utk"), "--dataset", "utkinect", "--out", str(data),
           "--quiet")
    train = load_script(repo_root, "train_MANs").main(["--data", str(data), "--benchmark", "xsub", "--out", str(run),
                                                       "--epochs", "1", "--steps-per-epoch", "2", "--no-tarm"])
    assert train == 0
    assert sorted(path.name for path in run.iterdir()) == ["bone", "joint"]  # its default: two streams
    record = json.loads((run / "joint" / "config.json").read_text())
    config, sources = record["config"], record["sources"]
    assert (config["batch_size"], config["augment"], config["val"]) == (16, True, "none")
    assert sources["batch_size"] == sources["augment"] == sources["val"] == "dataset"
    assert sources["epochs"] == "flag" and record["splits"] == {"fit": 99, "val": 0, "test": 100}
    joint = run / "joint" / "best.keras"
    printed = script("evaluate.py", str(joint), "--data", str(data), "--benchmark", "xsub").stdout
    metrics = json.loads((run / "joint" / "metrics.json").read_text())
    assert metrics["num_samples"] == 100 and "(100 xsub test samples, mirror test-time augmentation)" in printed
    names = (run / "joint" / "per_class_accuracy.csv").read_text()
    assert "waveHands" in names and "clapHands" in names
    ntu_file = tmp_path / "S001C001P001R001A001.skeleton"
    ntu_file.write_text("0\r\n")
    capsys.readouterr()
    refused = load_script(repo_root, "evaluate").main([str(joint), "--skeleton", str(ntu_file)])
    err = capsys.readouterr().err
    assert refused == 2 and err.count("\n") == 1
    assert "was trained on utkinect data and reads UT-Kinect-Action3D joint files" in err
