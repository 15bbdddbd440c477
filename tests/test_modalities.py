"""Joint, bone and motion images (process_data.py --modality), one MANs per modality (train_MANs.py --modalities)
and the fusion of their scores (evaluate.py on the run folder)."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from test_data import load_script

from mans.evaluation import score as evaluation
from mans.formats import skeleton_from_array
from mans.preprocessing import preprocess, samples, storage
from mans.preprocessing.preprocess import KINECT_V1_LAYOUT, NTU_LAYOUT

REPO = pathlib.Path(__file__).resolve().parents[1]


def kinect_sequence(frames: int = 7, seed: int = 0) -> np.ndarray:
    """(frames, 20, 3) joints of a Kinect v1 body standing and moving a little: hips, shoulders and feet in place."""
    rng = np.random.default_rng(seed)
    rest = np.zeros((20, 3))
    rest[:, 1] = np.linspace(1.5, 0.0, 20)  # every joint at its own height
    rest[[4, 5, 6, 7, 12, 13, 14, 15], 0] = -0.2  # the left side
    rest[[8, 9, 10, 11, 16, 17, 18, 19], 0] = 0.2
    rest[:, 2] = 3.0
    rest[[0, 1, 2, 3], 1] = [1.0, 1.2, 1.45, 1.7]
    rest[[4, 8], 1], rest[[12, 16], 1] = 1.45, 1.0
    rest[[14, 18], 1], rest[[15, 19], 1] = 0.1, 0.0
    rest[[15, 19], 2] = 2.9
    return rest + 0.02 * rng.standard_normal((frames, 20, 3))


def test_bone_and_motion_rows_by_hand():
    rows = np.arange(2 * 20 * 3, dtype=np.float64).reshape(2, 20, 3) ** 1.5  # (T=2, 20 joints, xyz)
    bones = preprocess.modality_rows(rows, "bone", KINECT_V1_LAYOUT)
    np.testing.assert_array_equal(bones[:, 0], 0)  # the hip centre is the root
    np.testing.assert_allclose(bones[:, 5], rows[:, 5] - rows[:, 4])  # left elbow - left shoulder
    np.testing.assert_allclose(bones[:, 4], rows[:, 4] - rows[:, 2])  # left shoulder - shoulder centre
    np.testing.assert_allclose(bones[:, 3], rows[:, 3] - rows[:, 2])  # head - shoulder centre
    np.testing.assert_allclose(bones[:, 12], rows[:, 12] - rows[:, 0])  # left hip - hip centre
    motion = preprocess.modality_rows(rows, "motion", KINECT_V1_LAYOUT)
    np.testing.assert_allclose(motion[0], rows[1] - rows[0])
    np.testing.assert_array_equal(motion[1], 0)  # the last frame has no next one
    assert preprocess.modality_rows(rows, "joint", KINECT_V1_LAYOUT) is rows


def test_two_bodies_each_take_their_own_parents():
    rows = np.random.default_rng(1).standard_normal((3, 50, 3))
    bones = preprocess.modality_rows(rows, "bone", NTU_LAYOUT)
    np.testing.assert_allclose(bones[:, 25 + 1], rows[:, 25 + 1] - rows[:, 25 + 0])  # body 1's spine mid - base
    np.testing.assert_allclose(bones[:, 25 + 4], rows[:, 25 + 4] - rows[:, 25 + 20])  # shoulder - spine shoulder
    np.testing.assert_array_equal(bones[:, [0, 25]], 0)


def test_parents_follow_the_bones_from_the_root_whatever_their_order():
    assert preprocess.parents_from_bones([(1, 0), (1, 2), (3, 2)], 5, root=0) == (0, 0, 1, 2, 4)
    with pytest.raises(ValueError, match="bone modality needs the dataset's bones"):
        preprocess.modality_rows(np.zeros((2, 5, 3)), "bone", preprocess.JointLayout(num_joints=5, max_bodies=1))


@pytest.mark.parametrize("frames", ["pad", "resample"])
def test_bone_images_are_joint_images_minus_the_parents_columns(frames):
    skeleton = skeleton_from_array(kinect_sequence()[:, None])
    settings = {"size": 50, "layout": KINECT_V1_LAYOUT, "frames": frames, "signs": "rigid", "centre": "floor"}
    joint = preprocess.process_skeleton(skeleton, **settings)
    bone = preprocess.process_skeleton(skeleton, **settings, modality="bone")
    offset = (50 - 20) // 2
    parents = offset + np.asarray(KINECT_V1_LAYOUT.parents)
    np.testing.assert_allclose(bone[:, offset:offset + 20], joint[:, offset:offset + 20] - joint[:, parents],
                               atol=1e-6)  # interpolating rows commutes with the bone difference
    np.testing.assert_array_equal(bone[:, :offset], 0)


def test_motion_images_are_the_frame_differences_before_padding():
    skeleton = skeleton_from_array(kinect_sequence(frames=7)[:, None])
    settings = {"size": 50, "layout": KINECT_V1_LAYOUT, "frames": "pad", "signs": "rigid", "centre": "floor"}
    joint = preprocess.process_skeleton(skeleton, **settings)
    motion = preprocess.process_skeleton(skeleton, **settings, modality="motion")
    first = (50 - 7) // 2  # the demo pads a short recording on both sides
    np.testing.assert_allclose(motion[first:first + 6], joint[first + 1:first + 7] - joint[first:first + 6], atol=1e-6)
    np.testing.assert_array_equal(motion[first + 6:], 0)  # the last frame's difference and the padding
    np.testing.assert_array_equal(motion[:first], 0)


def test_timed_motion_is_a_velocity_over_the_capture_times():
    rows = np.random.default_rng(2).standard_normal((4, 20, 3))
    times = np.array([0.0, 2.0, 6.0, 8.0])  # a camera that skipped samples unevenly, as UT-Kinect's does
    velocity = preprocess.modality_rows(rows, "motion", KINECT_V1_LAYOUT, times)
    np.testing.assert_allclose(velocity[1], (rows[2] - rows[1]) / 4.0)
    np.testing.assert_allclose(velocity[2], (rows[3] - rows[2]) / 2.0)
    np.testing.assert_array_equal(velocity[3], 0)
    np.testing.assert_allclose(preprocess.modality_rows(rows, "motion", KINECT_V1_LAYOUT)[1], rows[2] - rows[1])


def test_timed_motion_images_divide_the_differences_by_the_camera_steps():
    times = np.array([10.0, 12.0, 16.0, 22.0, 24.0])  # camera frame numbers that skip unevenly
    skeleton = dataclasses.replace(skeleton_from_array(kinect_sequence(frames=5)[:, None]), times=times)
    settings = {"size": 50, "layout": KINECT_V1_LAYOUT, "signs": "rigid", "centre": "floor", "modality": "motion"}
    velocity = preprocess.process_skeleton(skeleton, **settings, frames="timed")
    rows = preprocess.normalised_rows(skeleton, preprocess.Preprocessing("faithful", "timed", "rigid", "floor"),
                                      KINECT_V1_LAYOUT)
    by_hand = np.zeros_like(rows)
    by_hand[:-1] = (rows[1:] - rows[:-1]) / np.diff(times)[:, None, None]
    np.testing.assert_allclose(velocity, preprocess.image_from_rows(by_hand, 50, "timed", times), atol=1e-6)
    resampled = preprocess.process_skeleton(skeleton, **settings, frames="resample")
    assert not np.allclose(velocity, resampled, atol=1e-3)  # "resample" keeps one difference per recorded step


def test_the_motion_of_2d_keypoints_keeps_their_scores():
    layout = preprocess.JointLayout(num_joints=20, max_bodies=1, dims=2)
    rows = np.random.default_rng(3).random((3, 20, 3))
    motion = preprocess.modality_rows(rows, "motion", layout)
    np.testing.assert_allclose(motion[0, :, :2], rows[1, :, :2] - rows[0, :, :2])
    np.testing.assert_array_equal(motion[..., 2], rows[..., 2])


def test_the_joint_modality_is_the_image_of_before():
    skeleton = skeleton_from_array(kinect_sequence()[:, None])
    default = preprocess.process_skeleton(skeleton, size=50, layout=KINECT_V1_LAYOUT, frames="resample")
    joint = preprocess.process_skeleton(skeleton, size=50, layout=KINECT_V1_LAYOUT, frames="resample",
                                        modality="joint")
    assert default.tobytes() == joint.tobytes()
    assert preprocess.Preprocessing.from_attrs({"mode": "faithful"}).modality == "joint"  # files made before


def script(name: str, *argv: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / name), *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, env=environment, timeout=600)


@pytest.fixture(scope="module")
def modality_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("modalities")
    process_data = load_script(REPO, "process_data")
    out = folder / "synthetic.h5"
    argv = ["--synthetic", str(folder / "raw"), "--samples", "60", "--actions", "5", "--modality", "joint", "bone",
            "--out", str(out), "--workers", "1", "--quiet"]
    assert process_data.main(argv) == 0
    return out


def test_process_data_writes_one_file_per_modality(modality_files):
    bone = storage.modality_path(modality_files, "bone")
    assert bone.name == "synthetic-bone.h5"
    columns, attrs = storage.read_metadata(bone)
    joint_columns, joint_attrs = storage.read_metadata(modality_files)
    assert (attrs["modality"], joint_attrs["modality"]) == ("bone", "joint")
    assert columns["name"].tolist() == joint_columns["name"].tolist()
    assert storage.modality_file(modality_files, "bone") == bone
    assert storage.modality_file(bone, "joint") == modality_files
    with pytest.raises(FileNotFoundError, match="synthetic-motion.h5: no motion file beside"):
        storage.modality_file(modality_files, "motion")


def test_the_files_converted_together_name_each_other_for_training(modality_files):
    from mans.training import fit

    assert fit.converted_modalities(modality_files) == ["joint", "bone"]
    assert fit.converted_modalities(storage.modality_path(modality_files, "bone")) is None  # trains alone


def test_a_fused_two_stream_run_through_the_scripts(modality_files, tmp_path):
    run = tmp_path / "run"
    tiny = ["--epochs", "1", "--batch-size", "8", "--steps-per-epoch", "2", "--gru-units", "4", "--val", "none"]
    trained = script("train_MANs.py", "--data", modality_files, "--out", run, *tiny)  # the modalities converted
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "== modality bone (2/2)" in trained.stdout
    config = json.loads((run / "bone" / "config.json").read_text())
    assert config["data_attrs"]["modality"] == "bone"
    evaluated = script("evaluate.py", run, "--data", modality_files, "--benchmark", "xsub")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    summary = json.loads((run / "xsub_modalities.json").read_text())
    assert summary["modalities"] == ["joint", "bone"] and len(summary["member_top1"]) == 2
    fused = np.load(run / "scores.npy")
    parts = [np.load(run / name / "scores.npy") for name in ("joint", "bone")]
    np.testing.assert_allclose(fused, parts[0] + parts[1], rtol=1e-5)
    assert "xsub: fused joint + bone: top-1" in evaluated.stdout
    alone = script("evaluate.py", run / "bone", "--data", storage.modality_path(modality_files, "bone"))
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert alone.stdout.startswith(f"top-1 {summary['member_top1'][1]:.2%}")  # the run folder's best.keras
    refused = script("evaluate.py", run, "--explain", "a.skeleton")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "holds one run per modality (joint, bone): give --explain one of their checkpoints" in refused.stderr
    predictor = evaluation.load_predictor(run / "bone" / "best.keras")  # --skeleton, --explain, --stream
    columns, _ = storage.read_metadata(storage.modality_path(modality_files, "bone"))
    raw = modality_files.parent / "raw" / f"{columns['name'][3]}.skeleton"
    (recording,) = predictor.read(raw)
    stored = samples.read_images(storage.modality_path(modality_files, "bone"))[3]
    assert predictor.image(recording.skeleton).tobytes() == stored.tobytes()
    fused = probabilities(run, raw)  # evaluate.py RUN --skeleton: the mean of the modalities' probabilities
    joint, bone = (probabilities(run / name / "best.keras", raw) for name in ("joint", "bone"))
    assert fused.keys() == joint.keys() == bone.keys()
    assert all(fused[action] == pytest.approx((joint[action] + bone[action]) / 2, abs=1e-6) for action in fused)
    missing = script("train_MANs.py", "--data", modality_files, "--modalities", "joint", "motion", "--out",
                     tmp_path / "other", *tiny)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no motion file beside" in missing.stderr and not (tmp_path / "other").exists()


def probabilities(checkpoint: pathlib.Path, recording: pathlib.Path) -> dict[str, float]:
    """Every action's probability for one recording (evaluate.py CHECKPOINT --skeleton)."""
    ((_, ranked),) = evaluation.predict_files(checkpoint, [recording], top=1000)
    return dict(ranked)


def test_torso_scale_divides_the_image_by_the_hips_to_shoulder_length():
    sequence = kinect_sequence()
    skeleton = skeleton_from_array(sequence[:, None])
    settings = {"size": 50, "layout": KINECT_V1_LAYOUT, "frames": "resample", "signs": "rigid", "centre": "floor"}
    metres = preprocess.process_skeleton(skeleton, **settings)
    scaled = preprocess.image_and_drops(skeleton, preprocess.Preprocessing("faithful", "resample", "rigid", "floor",
                                                                           scale="torso"), 50, KINECT_V1_LAYOUT)[0]
    hips = sequence[:, [12, 16]].mean(axis=1)  # the origin joints; the up joint is the left shoulder (4)
    length = np.median(np.linalg.norm(sequence[:, 4] - hips, axis=1))  # a rotation keeps lengths
    np.testing.assert_allclose(scaled, metres / length, rtol=1e-4, atol=1e-6)
    assert preprocess.Preprocessing.from_attrs({"mode": "faithful"}).scale == "none"  # files made before
    assert preprocess.torso_length(np.zeros((3, 20, 3)), KINECT_V1_LAYOUT) == 1.0  # nobody: unchanged
