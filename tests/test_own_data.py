"""Your own data (README "Your own data"): a folder of .npy sequences, a labels table and a description.

A 2D layout (17 COCO keypoints, x y score, pixels) and a 3D layout of 15 joints (OpenNI, metres) go through
process_data.py -> train_MANs.py (a few steps of a tiny model) -> evaluate.py in a fresh process; every bad
input gets its one line, and a schema error names the key.
"""

import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from test_data import load_script

from mans import formats as readers
from mans.preprocessing import datasets, description, preprocess, storage

REPO = pathlib.Path(__file__).resolve().parents[1]
TEMPLATE_3D = REPO / "data" / "template_description.json"
TEMPLATE_2D = REPO / "data" / "coco17_description.json"
# OpenNI's 15 joints in metres (x right, y up, z away from the camera), a person standing 3 m away.
POSE_3D = np.array([
    (0, 1.70, 3), (0, 1.50, 3), (0, 1.20, 3), (-0.20, 1.45, 3), (-0.25, 1.20, 3), (-0.28, 0.95, 3),
    (0.20, 1.45, 3), (0.25, 1.20, 3), (0.28, 0.95, 3), (-0.12, 0.95, 3), (-0.13, 0.50, 3), (-0.14, 0.05, 2.9),
    (0.12, 0.95, 3), (0.13, 0.50, 3), (0.14, 0.05, 2.9),
])  # fmt: skip
# COCO's 17 keypoints in the same body, seen from the front: (x, y) in metres, y up.
POSE_2D = np.array([
    (0, 1.65), (-0.03, 1.68), (0.03, 1.68), (-0.07, 1.66), (0.07, 1.66), (-0.20, 1.45), (0.20, 1.45),
    (-0.25, 1.20), (0.25, 1.20), (-0.28, 0.95), (0.28, 0.95), (-0.12, 0.95), (0.12, 0.95), (-0.13, 0.50),
    (0.13, 0.50), (-0.14, 0.08), (0.14, 0.08),
])  # fmt: skip
MOVING = {"3d": (5, 8, 14), "2d": (9, 10, 16)}  # left hand / wrist, right hand / wrist, right foot / ankle


def motion(kind: str, action: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, joints, channels) of one synthetic action: 0 waves the left hand, 1 claps, 2 kicks."""
    pose = POSE_3D if kind == "3d" else POSE_2D
    phase = np.linspace(0, 2 * np.pi, frames)[:, None]
    joints = np.repeat(pose[None], frames, axis=0).astype(np.float64)  # (F, J, D)
    left, right, foot = MOVING[kind]
    if action == 0:
        joints[:, left, 0] += 0.25 * np.sin(2 * phase[:, 0])
        joints[:, left, 1] += 0.7
    elif action == 1:
        joints[:, left, 0] += 0.25 * (1 + np.sin(3 * phase[:, 0]))
        joints[:, right, 0] -= 0.25 * (1 + np.sin(3 * phase[:, 0]))
        joints[:, [left, right], 1] += 0.3
    else:
        joints[:, foot, 1] += 0.4 * np.abs(np.sin(phase[:, 0]))
    joints += rng.normal(0, 0.01, joints.shape)
    angle = rng.uniform(-0.4, 0.4)
    if kind == "3d":
        rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
        return (joints @ rotation.T + rng.normal(0, 0.2, 3)).astype(np.float32)
    scale, shift = rng.uniform(150, 250), rng.uniform(200, 400, 2)
    pixels = np.stack([shift[0] + scale * joints[..., 0], shift[1] - scale * joints[..., 1]], axis=-1)  # y down
    score = rng.uniform(0.5, 1.0, (*pixels.shape[:2], 1))
    return np.concatenate([pixels, score], axis=-1).astype(np.float32)


def write_folder(folder: pathlib.Path, kind: str, template: pathlib.Path, subjects: int = 6, repeats: int = 3,
                 **changes) -> pathlib.Path:
    """A folder in the documented format (sequences, labels.csv) and its description; returns the description."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    actions = json.loads(template.read_text())["actions"]
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sequence", "action", "subject"])
        for subject in range(1, subjects + 1):
            for number, action in enumerate(actions):
                for repeat in range(repeats):
                    name = f"s{subject}_{action}_{repeat}"
                    np.save(folder / f"{name}.npy", motion(kind, number, int(rng.integers(20, 40)), rng))
                    writer.writerow([name, action, subject])
    desc = json.loads(template.read_text())
    desc.update({"name": f"test-{kind}", **changes})
    path = folder / "description.json"
    path.write_text(json.dumps(desc))
    return path


def script(name: str, *argv) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / name), *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, env=environment, timeout=600)


def process(capsys, *argv) -> tuple[int, str, str]:
    code = load_script(REPO, "process_data").main([*map(str, argv), "--quiet", "--workers", "1"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("kind, template", [("2d", TEMPLATE_2D), ("3d", TEMPLATE_3D)])
def test_process_train_save_evaluate(kind, template, tmp_path, capsys):
    folder = tmp_path / "mine"
    described = json.loads(template.read_text())
    training = {**described.get("training", {}), "epochs": 1, "batch_size": 8}  # the template's, shortened
    desc = write_folder(folder, kind, template, training=training)
    h5 = tmp_path / "mine.h5"
    code, out, err = process(capsys, "--dataset", desc, "--skeletons", folder, "--out", h5)
    assert code == 0, err
    assert f"kept 54 of 54 files (test-{kind}, faithful, size 50)" in out
    meta, attrs = storage.read_metadata(h5)
    joints = described["joints"]
    assert attrs["joint_names"] == joints and attrs["class_names"] == ["wave", "clap", "kick"]
    assert attrs["dataset"] == f"test-{kind}" and len(attrs["bones"]) > 10
    assert sorted(set(meta["performer"].tolist())) == [1, 2, 3, 4, 5, 6]

    streams = described.get("modalities", ["joint"])
    run = tmp_path / "run"  # --no-tarm: the data's way through the scripts is the point, not the TARM
    train = load_script(REPO, "train_MANs").main(["--data", str(h5), "--out", str(run), "--benchmark", "xsub",
                                                  "--steps-per-epoch", "2", "--no-tarm"])
    assert train == 0
    joint_run = run / "joint" if len(streams) > 1 else run  # the 3D template trains the pooled study's two streams
    config = json.loads((joint_run / "config.json").read_text())
    assert config["config"]["epochs"] == 1 and config["sources"]["epochs"] == "dataset"
    assert config["data_attrs"]["joint_names"] == joints

    if kind == "3d":
        assert streams == ["joint", "motion"]
        starts = [json.loads((run / s / "config.json").read_text())["config"]["tarm_identity_start"] for s in streams]
        assert starts == [False, True]  # each stream with the TARM start the pooled study chose on it
        result = script("evaluate.py", run, "--data", h5, "--benchmark", "xsub")
        assert result.returncode == 0, result.stderr[-3000:]
        fused = json.loads((run / "xsub_modalities.json").read_text())
        assert fused["modalities"] == streams and len(fused["member_top1"]) == 2
        return  # one --skeleton run is enough (keeps the test short)
    result = script("evaluate.py", run / "best.keras", "--data", h5, "--benchmark", "xsub", "--out", tmp_path / "ev")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["num_samples"] == 27  # the even subjects
    sequence = folder / "s2_clap_0.npy"
    datasets._REGISTERED.clear()  # as in a fresh process: the description comes from the run folder
    assert load_script(REPO, "evaluate").main([str(run / "best.keras"), "--skeleton", str(sequence), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "s2_clap_0" in printed and all(name in printed for name in ("wave", "clap", "kick"))


def test_the_file_carries_its_description(tmp_path, capsys):
    folder = tmp_path / "mine"
    desc = write_folder(folder, "3d", TEMPLATE_3D, subjects=4, repeats=1)
    assert process(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "a.h5")[0] == 0
    datasets._REGISTERED.clear()  # as in a fresh process
    _, attrs = storage.read_metadata(tmp_path / "a.h5")
    spec = datasets.get_dataset("test-3d")
    assert spec.benchmarks == ("xsub", "loso", "loso-1", "loso-2", "loso-3", "loso-4")  # folds from the labels
    assert spec.layout.num_joints == 15 and spec.frames == "resample"
    assert attrs["description"]["splits"]["loso"]["values"] == [1, 2, 3, 4]


def test_the_description_s_modalities_are_converted_and_trained_by_default(small, tmp_path, capsys, monkeypatch):
    from mans.training import fit as training

    folder, desc = small
    edit(desc, lambda d: d.update(modalities=["joint", "bone"]))
    assert process(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "a.h5")[0] == 0
    assert process(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "b.h5",
                   "--modality", "joint")[0] == 0
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["a-bone.h5", "a.h5", "b.h5"]
    datasets._REGISTERED.clear()  # as in a fresh process
    assert storage.read_metadata(tmp_path / "a-bone.h5")[1]["description"]["modalities"] == ["joint", "bone"]
    trained = []
    monkeypatch.setattr(training, "train_one", lambda flags, argv=None: trained.append(flags["out"]))
    for name in ("a.h5", "b.h5"):
        training.train({"data": str(tmp_path / name), "benchmark": "xsub", "out": str(tmp_path / name[0])})
    assert trained == [str(tmp_path / "a" / "joint"), str(tmp_path / "a" / "bone"), str(tmp_path / "b")]


def test_loso_trains_one_fold_per_subject_of_the_labels(tmp_path, capsys, monkeypatch):
    from mans.training import fit as training

    folder = tmp_path / "mine"
    desc = write_folder(folder, "3d", TEMPLATE_3D, subjects=4, repeats=1)
    assert process(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "a.h5")[0] == 0
    datasets._REGISTERED.clear()  # as in a fresh process
    trained = []
    monkeypatch.setattr(training, "train_one", lambda flags, argv=None: trained.append(
        (pathlib.Path(flags["out"]).relative_to(tmp_path / "run").parts[0], flags["benchmark"])))
    training.train({"data": str(tmp_path / "a.h5"), "benchmark": "loso", "out": str(tmp_path / "run")})
    folds = ["loso-1", "loso-2", "loso-3", "loso-4"]
    assert trained == [(stream, fold) for stream in ("joint", "motion") for fold in folds]


def test_two_streams_train_and_fuse_every_fold(tmp_path, capsys):
    """UT-Kinect's documented loso command with its two streams: one run per stream and fold, fused per fold."""
    folder = tmp_path / "mine"
    desc = write_folder(folder, "3d", TEMPLATE_3D, subjects=3, repeats=1, training={"epochs": 1, "batch_size": 4})
    h5 = tmp_path / "mine.h5"
    assert process(capsys, "--dataset", desc, "--skeletons", folder, "--out", h5, "--modality", "joint", "bone")[0] == 0
    datasets._REGISTERED.clear()  # as in a fresh process
    run = tmp_path / "run"
    assert load_script(REPO, "train_MANs").main(["--data", str(h5), "--out", str(run), "--benchmark", "loso",
                                                 "--steps-per-epoch", "1", "--no-tarm"]) == 0
    assert sorted(p.name for p in (run / "bone").iterdir() if p.is_dir()) == ["loso-1", "loso-2", "loso-3"]
    result = script("evaluate.py", run, "--data", h5, "--benchmark", "loso")
    assert result.returncode == 0, result.stderr[-3000:]
    fused = json.loads((run / "loso_modalities.json").read_text())
    assert fused["modalities"] == ["joint", "bone"] and fused["folds"] == 3
    assert all((run / fold / "metrics.json").is_file() for fold in ("loso-1", "loso-2", "loso-3"))


def test_a_stream_s_own_training_settings_go_over_the_dataset_s(small, tmp_path, capsys):
    folder, desc = small
    edit(desc, lambda d: d.update(modalities=["joint", "motion"], training={
        "preset": "small-data", "tarm_identity_start": False, "epochs": 1,
        "streams": {"motion": {"tarm_identity_start": True}}}))
    spec = datasets.spec_from_description(description.load_description(desc))
    assert spec.train_defaults_of("joint")["tarm_identity_start"] is False
    assert spec.train_defaults_of("motion")["tarm_identity_start"] is True
    assert spec.train_defaults_of("motion")["batch_size"] == 16  # the preset's, under both
    h5 = tmp_path / "a.h5"
    assert process(capsys, "--dataset", desc, "--skeletons", folder, "--out", h5)[0] == 0
    datasets._REGISTERED.clear()  # as in a fresh process: the description comes from the file
    run = tmp_path / "run"
    assert load_script(REPO, "train_MANs").main(["--data", str(h5), "--out", str(run), "--benchmark", "xsub",
                                                 "--steps-per-epoch", "1", "--batch-size", "4", "--no-tarm"]) == 0
    for stream, start in (("joint", False), ("motion", True)):
        record = json.loads((run / stream / "config.json").read_text())
        assert record["config"]["tarm_identity_start"] is start
        assert record["sources"]["tarm_identity_start"] == "dataset"


def test_a_stream_s_settings_name_a_known_stream_and_key(small):
    _, desc = small
    for streams, key in (({"speed": {}}, "training.streams.speed"), ({"motion": {"preset": "small-data"}},
                                                                      "training.streams.motion.preset")):
        edit(desc, lambda d, streams=streams: d.update(training={"streams": streams}))
        with pytest.raises(description.DescriptionError, match=key.replace(".", r"\.")):
            description.load_description(desc)


def test_image_plane_view_normalisation():
    """2D: translation, in-plane rotation and scale of the picture change nothing; the score is kept as the
    third channel, and a joint not seen (score 0) is stored as zeros."""
    layout = datasets.layout_of(description.load_description(TEMPLATE_2D))
    rng = np.random.default_rng(1)
    pose = motion("2d", 1, 12, rng)  # (F, 17, 3)
    pose[3, 4, 2] = 0  # right ear not seen in frame 3
    angle, scale = 0.5, 1.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = pose.copy()
    moved[..., :2] = pose[..., :2] @ rotation.T * scale + np.array([55.0, -20.0])
    rows = [preprocess.normalised_rows(readers.skeleton_from_array(p[:, None], "xy+score"), layout=layout)
            for p in (pose, moved)]
    np.testing.assert_allclose(rows[0], rows[1], atol=1e-4)
    np.testing.assert_allclose(rows[0][..., 2], np.where(pose[..., 2] > 0, pose[..., 2], 0), atol=1e-6)
    assert np.all(rows[0][3, 4] == 0)
    hips, shoulders = rows[0][:, [11, 12]], rows[0][:, [5, 6]]
    assert np.all(shoulders[..., 1].mean(axis=1) > 0.5)  # up is +y, in body units
    assert np.allclose(hips[..., :2].mean(axis=1), 0, atol=0.1)  # the origin is the hips' midpoint
    assert np.all(hips[:, 1, 0] > hips[:, 0, 0])  # the right hip lies at +x
    image = preprocess.process_skeleton(readers.skeleton_from_array(pose[:, None], "xy+score"), size=20,
                                        layout=layout, frames="resample")
    assert image.shape == (20, 20, 3)
    with pytest.raises(ValueError, match="3D"):
        preprocess.process_skeleton(readers.skeleton_from_array(pose[:, None], "xy+score"), "denoised", 20, layout)


def test_xy_without_score_gets_a_third_channel_of_ones():
    pose = motion("2d", 0, 5, np.random.default_rng(2))[..., :2]
    pose[0, 3] = 0  # an unseen joint at (0, 0)
    skel = readers.skeleton_from_array(pose[:, None], "xy")
    assert skel.coords.shape == (5, 1, 17, 3)
    assert skel.coords[..., 2].sum() == 5 * 17 - 1 and skel.coords[0, 0, 3, 2] == 0


def test_3d_layout_without_feet_undoes_a_flipped_axis(monkeypatch):
    layout = datasets.layout_of(description.load_description(TEMPLATE_3D))
    skel = readers.skeleton_from_array(motion("3d", 2, 10, np.random.default_rng(3))[:, None])
    straight = preprocess.normalised_rows(skel, layout=layout)
    original = preprocess.pca_first_axis
    monkeypatch.setattr(preprocess, "pca_first_axis", lambda points: -original(points))
    np.testing.assert_allclose(preprocess.normalised_rows(skel, layout=layout), straight, atol=1e-9)


# ---------------------------------------------------------------- bad input: one line each


def one_line_error(capsys, *argv) -> str:
    code, _, err = process(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture()
def small(tmp_path):
    folder = tmp_path / "mine"
    return folder, write_folder(folder, "3d", TEMPLATE_3D, subjects=4, repeats=1)


def edit(path: pathlib.Path, change) -> pathlib.Path:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["view"].update(up="left ankle"), "key 'view.up': joint 'left ankle' is not one of"),
    (lambda d: d["bones"].append(["head", "tail"]), "key 'bones': joint 'tail'"),
    (lambda d: d.update(colour="red"), "key 'colour': unknown key (known: format, name, reader, actions"),
    (lambda d: d["view"].update(centre=["torso"]), "key 'view.centre': unknown key (known: origin, torso, hips"),
    (lambda d: d.pop("splits"), "key 'splits': required key missing"),
    (lambda d: d.update(frames="stretch"), "key 'frames': Input should be 'pad', 'resample' or 'timed'"),
    (lambda d: d.update(coordinates="xyzw"), "key 'coordinates'"),
    (lambda d: d["training"].update(epochs=0), "key 'training.epochs'"),
    (lambda d: d.update(modalities=["joint", "joint"]), "key 'modalities': 'joint' appears twice"),
    (lambda d: d.update(modalities=["joint", "bone"], bones=[]), "key 'modalities': the bone modality needs"),
    (lambda d: d.update(modalities=["speed"]), "key 'modalities.0'"),
    (lambda d: d["splits"].update(xview={"train": {"view": [1, 2]}}),
     "key 'splits.xview': column 'view' is not one of"),
    (lambda d: d["splits"].update(bad={"train": {"subject": [1]}, "leave_one_out": "subject"}),
     "key 'splits.bad': expected exactly one of 'train'"),
])  # fmt: skip
def test_description_problems_are_one_line_naming_the_key(small, tmp_path, capsys, change, expected):
    folder, desc = small
    err = one_line_error(capsys, "--dataset", edit(desc, change), "--skeletons", folder, "--out", tmp_path / "o.h5")
    assert str(desc) in err and expected in err
    assert not list(tmp_path.glob("o*"))


def test_split_selecting_nothing_is_refused_before_writing(small, tmp_path, capsys):
    folder, desc = small
    edit(desc, lambda d: d["splits"].update(xsub={"train": {"subject": [7, 9]}}))
    err = one_line_error(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "o.h5")
    assert "key 'splits.xsub'" in err and "no sequence to train on" in err and "'subject': [1, 2, 3, 4]" in err
    assert not list(tmp_path.glob("o*"))


def test_labels_problems_are_one_line(small, tmp_path, capsys):
    folder, desc = small
    labels = (folder / "labels.csv").read_text()
    (folder / "labels.csv").write_text(labels.replace("subject", "person"))
    err = one_line_error(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "o.h5")
    assert "labels.csv: expected the column(s) subject" in err
    (folder / "labels.csv").write_text(labels.replace(",wave,", ",dance,", 1))
    err = one_line_error(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "o.h5")
    assert "labels.csv, line 2: action 'dance' is neither one of the description's actions" in err
    assert not list(tmp_path.glob("o*"))


def test_bad_sequences_are_skipped_with_their_reason(small, tmp_path, capsys):
    folder, desc = small
    good = np.load(folder / "s1_wave_0.npy")
    np.save(folder / "s1_clap_0.npy", good[:, :14])  # joint count
    np.save(folder / "s1_kick_0.npy", good[..., :2])  # channel count
    nan = good.copy()
    nan[3, 2, 1] = np.nan
    np.save(folder / "s2_wave_0.npy", nan)
    np.save(folder / "s2_clap_0.npy", good[:0])  # empty
    (folder / "s2_kick_0.npy").unlink()  # labels without a sequence file
    out = tmp_path / "o.h5"
    code, printed, err = process(capsys, "--dataset", desc, "--skeletons", folder, "--out", out)
    assert code == 0, err
    assert "kept 7 of 12 files" in printed
    for reason in ("channel-count 1", "empty 1", "joint-count 1", "no-file 1", "non-finite 1"):
        assert reason in printed
    with open(storage.report_path_for(out)) as handle:
        report = {row["name"]: row for row in csv.DictReader(handle)}
    assert report["s1_clap_0"]["reason"] == "joint-count" and "expected 15 joints" in report["s1_clap_0"]["message"]
    assert f"(shape {good[:, :14].shape})" in report["s1_clap_0"]["message"]
    assert ", 1, 14, 3)" not in report["s1_clap_0"]["message"]  # the file's own shape, no added bodies axis
    assert report["s2_kick_0"]["reason"] == "no-file" and "s2_kick_0.npy not found" in report["s2_kick_0"]["message"]
    meta, _ = storage.read_metadata(out)
    assert "s1_wave_0" in set(meta["name"]) and len(meta["name"]) == 7

    err = one_line_error(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "s.h5", "--strict")
    assert "skipped (" in err and "[strict: any skip is an error]" in err
    assert not (tmp_path / "s.h5").exists()


def test_skeleton_of_another_shape_is_one_line(tmp_path):
    spec = datasets.spec_from_description(description.load_description(TEMPLATE_3D))
    from mans import formats as recordings

    fmt = recordings.format_for_spec(spec)
    np.save(tmp_path / "x.npy", np.zeros((10, 20, 3), np.float32))
    with pytest.raises(ValueError, match="x.npy: expected 15 joints"):
        fmt.recordings(tmp_path / "x.npy")
    assert fmt.matches(tmp_path / "x.npy") and not fmt.matches(tmp_path / "x.skeleton")


def test_builtin_descriptions_match_the_readers():
    from mans.formats import msr_action3d, utkinect

    assert datasets.get_dataset("utkinect").class_names == utkinect.ACTIONS
    assert datasets.get_dataset("msr-action3d").class_names == msr_action3d.ACTIONS
    assert datasets.get_dataset("ntu60").layout == preprocess.NTU_LAYOUT
    assert datasets.get_dataset("msr-action3d").layout == preprocess.KINECT_V1_LAYOUT
    assert datasets.get_dataset("utkinect").train_defaults == datasets.SMALL_DATA_TRAIN_DEFAULTS


def test_a_labels_column_the_description_does_not_list_is_named(small, tmp_path, capsys):
    folder, desc = small
    labels = (folder / "labels.csv").read_text().splitlines()
    rows = [labels[0] + ",camera_height"] + [line + ",1.2" for line in labels[1:]]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    code, printed, err = process(capsys, "--dataset", desc, "--skeletons", folder, "--out", tmp_path / "o.h5")
    assert code == 0, err
    assert "labels.csv: column(s) camera_height are not among the description's columns" in printed
