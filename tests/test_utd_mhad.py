"""UTD-MHAD: the reader on hand-made .mat files, and the real training subjects in ../shared/data (skipped where
absent): they read, convert and split as documented, in Kinect v1's joint order."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from mans import formats as recordings
from mans.formats import utd_mhad
from mans.preprocessing import splits, storage


def write_mat(path, matrix, variable="d_skel"):
    savemat(path, {variable: matrix})
    return path


def test_the_reader_puts_the_joints_into_kinect_v1_order(tmp_path):
    matrix = np.arange(20 * 3 * 4, dtype=np.float64).reshape(20, 3, 4) / 100  # joint j, coordinate c, frame t
    skeleton = utd_mhad.read_recording(write_mat(tmp_path / "a3_s2_t1_skeleton.mat", matrix))
    assert skeleton.coords.shape == (4, 1, 20, 3)
    np.testing.assert_allclose(skeleton.coords[2, 0, 0], matrix[3, :, 2], rtol=1e-6)  # hip centre is UTD's 4th
    np.testing.assert_allclose(skeleton.coords[2, 0, 3], matrix[0, :, 2], rtol=1e-6)  # head is UTD's 1st
    np.testing.assert_allclose(skeleton.coords[:, 0, 11], matrix[11].T, rtol=1e-6)  # right hand: the same index
    assert utd_mhad.parse_name("a3_s2_t1_skeleton.mat") == utd_mhad.Recording(3, 2, 1)


@pytest.mark.parametrize(("matrix", "variable", "message"), [
    (np.zeros((20, 3, 5)), "skel", "expected the variable 'd_skel', found skel"),
    (np.zeros((25, 3, 5)), "d_skel", "expected d_skel of shape (20, 3, frames), found float64 (25, 3, 5)"),
    (np.full((20, 3, 5), np.nan), "d_skel", "NaN or infinite"),
])
def test_a_wrong_file_is_one_message_naming_it(tmp_path, matrix, variable, message):
    path = write_mat(tmp_path / "a1_s1_t1_skeleton.mat", matrix, variable)
    with pytest.raises(ValueError, match="a1_s1_t1_skeleton.mat") as error:
        utd_mhad.read_recording(path)
    assert message in str(error.value)


def test_a_truncated_file_is_one_message(tmp_path):
    path = write_mat(tmp_path / "a1_s1_t1_skeleton.mat", np.ones((20, 3, 5)))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="a1_s1_t1_skeleton.mat: "):
        utd_mhad.read_recording(path)


@pytest.fixture(scope="module")
def utd(shared_data):
    return shared_data / "utd_mhad_train"


@pytest.fixture(scope="module")
def utd_h5(tmp_path_factory, utd):
    out = tmp_path_factory.mktemp("utd") / "utd.h5"
    storage.convert_folder(utd, out, dataset="utd-mhad", progress=False)
    return out


def test_the_training_subjects_convert_and_split(utd_h5):
    columns, attrs = storage.read_metadata(utd_h5)
    assert attrs["kept"] == 431 and attrs["skipped"] == {}
    assert attrs["num_classes"] == 27 and attrs["class_names"][8] == "right hand draw circle (clockwise)"
    assert {s: int((columns["performer"] == s).sum()) for s in (1, 3, 5, 7)} == {1: 107, 3: 108, 5: 108, 7: 108}
    counts = np.bincount(columns["label"], minlength=27)
    assert counts[7] == 15 and np.delete(counts, 7).tolist() == [16] * 26  # a8_s1_t4 is not distributed
    assert splits.split_mask(columns, "utd-mhad", "xsub").all()  # every one is a training subject
    fold = splits.split_mask(columns, "utd-mhad", "loso-5")
    assert fold.sum() == 323 and set(columns["performer"][~fold].tolist()) == {5}


def test_a_right_hand_wave_moves_the_right_hand_in_kinect_order(utd):
    path = utd / "a3_s1_t1_skeleton.mat"
    raw = loadmat(path)["d_skel"]
    skeleton = utd_mhad.read_recording(path)
    np.testing.assert_allclose(skeleton.coords[:, 0, 3], raw[0].T, rtol=1e-6)  # the head, UTD's joint 1
    motion = skeleton.coords[:, 0].std(axis=0).sum(axis=1)  # (20,): how much each joint moves
    assert int(np.argmax(motion)) in (10, 11)  # Kinect v1's right wrist or hand
    assert motion[10:12].min() > 5 * motion[6:8].max()  # the left wrist and hand keep still
    heights = skeleton.coords[0, 0, :, 1]
    assert int(np.argmax(heights)) == 3  # the head is the highest joint (y up)
    (recording,) = recordings.read_recordings(path, recordings.format_for_dataset("utd-mhad"))
    assert recording.name == "a03_s01_t01"


def test_process_data_converts_the_folder(utd, repo_root, tmp_path):
    out = tmp_path / "utd.h5"
    done = subprocess.run([sys.executable, "process_data.py", "--dataset", "utd-mhad", "--skeletons", str(utd),
                           "--out", str(out), "--quiet"], cwd=repo_root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "kept 431 of 431 files (utd-mhad" in done.stdout + done.stderr


def test_the_small_data_preset_with_its_own_epochs_and_tarm_start():
    from mans.preprocessing import datasets, description

    expected = {**datasets.SMALL_DATA_TRAIN_DEFAULTS, "epochs": 90, "tarm_identity_start": False}
    assert dict(datasets.get_dataset("utd-mhad").train_defaults) == expected
    # the built-in file itself: a file converted earlier in this process registers the modalities it was made with
    spec = datasets.spec_from_description(description.load_description(description.builtin_path("utd-mhad")))
    assert spec.description.modalities == ["joint", "motion"]  # the pooled study's choice (docs/datasets.md)
    assert dict(spec.train_defaults_of("motion")) == {**expected, "tarm_identity_start": True}
