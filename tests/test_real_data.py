"""The real recordings in ../shared/data (UT-Kinect's five training subjects, all of MSR Action3D): they read,
convert and split as documented, and a short training run goes through the scripts. Skipped where absent."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mans.formats import msr_action3d
from mans.preprocessing import datasets, samples, splits, storage


@pytest.fixture(scope="module")
def utkinect(shared_data):
    return shared_data / "utkinect_train"


@pytest.fixture(scope="module")
def utkinect_h5(tmp_path_factory, utkinect):
    out = tmp_path_factory.mktemp("utk") / "utkinect.h5"
    storage.convert_folder(utkinect, out, dataset="utkinect", progress=False)
    return out


@pytest.fixture(scope="module")
def msr_h5(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("msr") / "msr.h5"
    storage.convert_folder(shared_data / "msr_action3d", out, dataset="msr-action3d", progress=False)
    return out


def carrying_columns(path) -> set[int]:
    x = samples.read_images(path)
    return set(np.flatnonzero(np.abs(x).sum(axis=(0, 1, 3)) > 0).tolist())


def test_utkinect_training_subjects_convert_and_split(utkinect_h5):
    columns, attrs = storage.read_metadata(utkinect_h5)
    assert attrs["kept"] == 100 and attrs["skipped"] == {}
    assert sorted(set(columns["performer"].tolist())) == [1, 3, 5, 7, 9]
    assert np.bincount(columns["label"]).tolist() == [10] * 10
    assert splits.split_mask(columns, "utkinect", "xsub").all()  # every one is a training subject
    fold = splits.split_mask(columns, "utkinect", "loso-3")
    assert fold.sum() == 80 and set(columns["performer"][~fold].tolist()) == {3}
    size = attrs["size"]
    assert carrying_columns(utkinect_h5) == set(range((size - 20) // 2, (size - 20) // 2 + 20))


def test_msr_action3d_converts_with_the_all_zero_file_skipped(msr_h5):
    columns, attrs = storage.read_metadata(msr_h5)
    assert attrs["kept"] == 566 and attrs["skipped"] == {"all-zero": 1}
    report = storage.report_path_for(msr_h5).read_text().splitlines()
    assert len(report) == 2 and report[1].startswith("a13_s09_e02,all-zero,")
    assert attrs["class_names"][0] == "high arm wave" and attrs["num_classes"] == 20
    train = splits.split_mask(columns, "msr-action3d", "xsub")
    assert (int(train.sum()), int((~train).sum())) == (291, 275)
    assert sorted(set(columns["performer"][train].tolist())) == [1, 3, 5, 7, 9]
    assert np.bincount(columns["label"][train], minlength=20).min() > 0  # all 20 actions on both sides
    assert np.bincount(columns["label"][~train], minlength=20).min() > 0
    assert np.bincount(columns["performer"]).tolist()[1:] == [60, 59, 56, 38, 57, 58, 59, 60, 59, 60]  # kept
    assert carrying_columns(msr_h5) == set(range(15, 35))  # 20 joints centred in 50 columns


def test_msr_joints_are_reordered_to_kinect_v1(shared_data):
    path = shared_data / "msr_action3d" / "a01_s01_e01_skeleton3D.txt"
    raw = np.loadtxt(path).reshape(-1, 20, 4)
    skeleton = msr_action3d.read_recording(path)
    assert skeleton.coords.shape == (len(raw), 1, 20, 3)
    np.testing.assert_allclose(skeleton.coords[:, 0, 0], raw[:, 6, :3], rtol=1e-6)  # hip centre is MSR's 7th
    np.testing.assert_allclose(skeleton.coords[:, 0, 3], raw[:, 19, :3], rtol=1e-6)  # head is MSR's 20th
    np.testing.assert_allclose(skeleton.coords[:, 0, 16], raw[:, 4, :3], rtol=1e-6)  # right hip is MSR's 5th


def test_short_training_run_on_real_utkinect_through_the_scripts(utkinect, repo_root, tmp_path):
    """process -> train a few steps with the dataset's defaults -> evaluate, on real recordings (loso-1).
    --no-tarm: the real data's way through the scripts is the point here; the TARM trains end to end, resumed
    and evaluated in fresh processes, in tests/test_end_to_end.py."""

    def script(*argv: str) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, *argv], cwd=repo_root, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    data, run = tmp_path / "utk.h5", tmp_path / "run"
    script("process_data.py", "--dataset", "utkinect", "--skeletons", str(utkinect), "--out", str(data), "--quiet")
    script("train_MANs.py", "--data", str(data), "--benchmark", "loso-1", "--out", str(run), "--epochs", "1",
           "--steps-per-epoch", "2", "--no-tarm")  # UT-Kinect's default: the joint and bone streams
    for stream in ("joint", "bone"):
        record = json.loads((run / stream / "config.json").read_text())
        assert record["splits"] == {"fit": 80, "val": 0, "test": 20}
    printed = script("evaluate.py", str(run), "--data", str(data), "--benchmark", "loso-1").stdout
    assert "loso-1: fused joint + bone: top-1" in printed
    metrics = json.loads((run / "joint" / "metrics.json").read_text())
    assert metrics["num_samples"] == 20
    assert metrics["tta"] == "mirror"  # the default of a run that trained on mirror images


def converted_images(utkinect, folder, setting: str, values) -> dict:
    """{value: images} of UT-Kinect converted into `folder`/value.h5 once per value of a preprocessing setting."""
    images = {}
    for value in values:
        out = folder / f"{value}.h5"
        storage.convert_folder(utkinect, out, dataset="utkinect", workers=1, progress=False, **{setting: value})
        assert storage.read_metadata(out)[1][setting] == value
        images[value] = samples.read_images(out)
    return images


def predictor_of(data, raw_file, images):
    """The predictor of `data` (no model needed to read and preprocess), checked to make the image of `raw_file`
    exactly as the file holds it among `images`."""
    from mans.evaluation import score as evaluation

    checkpoint = data.parent / "no-model.keras"
    checkpoint.touch()
    predictor = evaluation.load_predictor(checkpoint, data)
    recording = predictor.read(raw_file)[0]
    index = [str(n) for n in storage.read_metadata(data)[0]["name"]].index(recording.name)
    np.testing.assert_allclose(predictor.image(recording.skeleton), images[index], atol=1e-6)
    return predictor


def test_rigid_signs_undo_the_demo_reflections_and_reach_the_predictor(utkinect, tmp_path):
    """On Kinect v1 the demo's foot test negates y alone in 22 of the 100 training sequences (front-back
    reflections, bench/RESULTS.md); rigid signs differ from it in exactly those, by y alone. A raw recording
    read by the predictor of a rigid file is preprocessed as the file's own samples were."""
    images = converted_images(utkinect, tmp_path, "signs", ("demo", "rigid"))
    differ = [i for i in range(100) if not np.array_equal(images["demo"][i], images["rigid"][i])]
    assert len(differ) == 22
    np.testing.assert_array_equal(images["demo"][differ], images["rigid"][differ] * np.array([1, -1, 1], np.float32))
    predictor = predictor_of(tmp_path / "rigid.h5", utkinect / "joints" / "joints_s01_e01.txt", images["rigid"])
    assert predictor.preprocessing.signs == "rigid"


def test_frame_centre_takes_each_frames_hips_away_and_reaches_the_predictor(utkinect, tmp_path):
    """centre "frame" stores the "first" rows minus each row's hip midpoint (joints 12 and 16), for every one of
    the 100 sequences; a raw recording read by the predictor of such a file is preprocessed as its samples were."""
    images = converted_images(utkinect, tmp_path, "centre", ("first", "frame"))
    hips = images["first"][:, :, [15 + 12, 15 + 16]].mean(axis=2, keepdims=True)  # joint columns start at 15
    assert np.abs(hips).max() > 0.5  # the actors walk and sit: the origin of the first frame does not follow them
    joints = slice(15, 35)
    np.testing.assert_allclose(images["frame"][:, :, joints], images["first"][:, :, joints] - hips, atol=1e-5)
    np.testing.assert_array_equal(images["frame"][:, :, 35:], 0)
    predictor = predictor_of(tmp_path / "frame.h5", utkinect / "joints" / "joints_s03_e02.txt", images["frame"])
    assert predictor.preprocessing.centre == "frame"


def test_floor_centre_takes_each_frames_hips_away_in_the_horizontal_plane(utkinect, tmp_path):
    """centre "floor" stores the "first" rows minus each row's hip midpoint in x and y only: z, the height above
    the first frame's hips, stays (sitting down still lowers every joint); the predictor preprocesses alike."""
    images = converted_images(utkinect, tmp_path, "centre", ("first", "floor"))
    hips = images["first"][:, :, [15 + 12, 15 + 16]].mean(axis=2, keepdims=True)
    assert np.abs(hips[..., 2]).max() > 0.2  # the actors sit and bend
    joints = slice(15, 35)
    np.testing.assert_allclose(images["floor"][:, :, joints, :2], images["first"][:, :, joints, :2] - hips[..., :2],
                               atol=1e-5)
    np.testing.assert_array_equal(images["floor"][..., 2], images["first"][..., 2])
    predictor = predictor_of(tmp_path / "floor.h5", utkinect / "joints" / "joints_s05_e01.txt", images["floor"])
    assert predictor.preprocessing.centre == "floor"
    assert datasets.get_dataset("utkinect").centre == datasets.get_dataset("msr-action3d").centre == "floor"


def test_timed_frames_follow_the_camera_frame_numbers_and_reach_the_predictor(utkinect, tmp_path):
    """UT-Kinect's camera skips 1 to 9 frames between two skeletons: "timed" images differ from "resample"
    ones in the sequences sampled unevenly, keep their first and last rows, and a raw recording read by the
    predictor of a timed file is preprocessed with its frame numbers, as the file's samples were."""
    images = converted_images(utkinect, tmp_path, "frames", ("resample", "timed"))
    differ = [i for i in range(100) if not np.allclose(images["resample"][i], images["timed"][i], atol=1e-6)]
    assert len(differ) > 50
    for row in (0, -1):
        np.testing.assert_allclose(images["timed"][:, row], images["resample"][:, row], atol=1e-6)
    predictor = predictor_of(tmp_path / "timed.h5", utkinect / "joints" / "joints_s07_e02.txt", images["timed"])
    assert predictor.preprocessing.frames == "timed"
