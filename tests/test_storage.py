"""mans.preprocessing.storage: the HDF5 layout, the skip report for every kind of bad input, atomic and safe output."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest
from test_preprocess import BODY, BODY_ID, expected, skeleton_text

from mans.preprocessing import samples, storage
from mans.preprocessing.synthetic import write_synthetic_dataset

GOOD = [[(BODY_ID, BODY + (0.01 * f, 0, 0))] for f in range(12)]
CROWD = [(BODY_ID, BODY), (BODY_ID + 1, BODY + 1), (BODY_ID + 2, BODY - 1)]


def put(folder, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.skeleton").write_text(text, newline="")


def good_text(shift: float = 0.0) -> str:
    return skeleton_text([[(i, j + shift) for i, j in bodies] for bodies in GOOD])


@pytest.fixture()
def bad_folder(tmp_path):
    """One good file per action 1-3 and one file for each kind of bad input."""
    folder = tmp_path / "skeletons"
    for action in (1, 2, 3):
        put(folder, f"S001C002P003R001A00{action}", good_text(0.1 * action))
    text = good_text()
    lines = text.split("\r\n")
    put(folder, "S002C001P001R001A010", "\r\n".join(lines[:40]))  # truncated
    put(folder, "S002C001P001R001A011", text.replace("250.1", "25O.1", 1))  # letter O: non-numeric
    put(folder, "S002C001P001R001A012", skeleton_text([[(BODY_ID, BODY[:24])]]))  # 24 joints
    nan = BODY.copy()
    nan[3, 1] = np.nan
    put(folder, "S002C001P001R001A013", skeleton_text([[(BODY_ID, nan)]]))
    put(folder, "S002C001P001R001A014", "0\r\n")  # zero frames
    put(folder, "S002C001P001R001A015", skeleton_text([[], [], []]))  # no body in any frame
    put(folder, "S002C001P001R001A016", text)  # good, but on the missing list
    put(folder, "S002C001P001R001A017", skeleton_text(GOOD + [CROWD]))  # last frame with 3 bodies
    put(folder, "S002C001P001A018", text)  # bad name
    put(folder, "S003C001P001R001A001.copy", text)  # not canonical: such names could collide
    (tmp_path / "missing.txt").write_text("# NTU's list\nS002C001P001R001A016\nS009C001P001R001A001\n")
    return folder


REASONS = {
    "S002C001P001R001A010": "truncated",
    "S002C001P001R001A011": "non-numeric",
    "S002C001P001R001A012": "joint-count",
    "S002C001P001R001A013": "non-finite",
    "S002C001P001R001A014": "zero-frames",
    "S002C001P001R001A015": "no-body",
    "S002C001P001R001A016": "missing-list",
    "S002C001P001R001A017": "last-frame-3+bodies",
    "S002C001P001A018": "bad-name",
    "S003C001P001R001A001.copy": "bad-name",
}


def read_report(path) -> dict[str, tuple[str, str]]:
    with open(path, newline="") as handle:
        return {row["name"]: (row["reason"], row["message"]) for row in csv.DictReader(handle)}


def test_every_bad_input_is_skipped_with_its_reason(bad_folder, tmp_path):
    out = tmp_path / "out" / "ntu.h5"
    summary = storage.convert_folder(bad_folder, out, missing_list=tmp_path / "missing.txt", workers=1,
                                     command="test", progress=False)
    assert (summary.files, summary.kept) == (13, 3)
    assert summary.skipped == {**{reason: 1 for reason in REASONS.values()}, "bad-name": 2}
    report = read_report(out.with_name("ntu.skipped.csv"))
    assert {name: reason for name, (reason, _) in report.items()} == REASONS
    assert "line" in report["S002C001P001R001A010"][1] and "24" in report["S002C001P001R001A012"][1]
    columns, attrs = storage.read_metadata(out)
    assert list(columns["name"]) == [f"S001C002P003R001A00{a}" for a in (1, 2, 3)]
    assert attrs["skipped"] == summary.skipped and attrs["kept"] == 3
    assert "kept 3 of 13 files" in summary.line() and "truncated 1" in summary.line()


def test_layout_and_values(bad_folder, tmp_path):
    out = tmp_path / "ntu.h5"
    storage.convert_folder(bad_folder, out, workers=1, command="python process_data.py --x", limit=3,
                           progress=False)
    with h5py.File(out) as h5:
        rows = h5["rows"]
        assert (rows.shape, rows.dtype, rows.chunks, rows.compression) == ((36, 50, 3), np.float32, None, None)
        assert h5["row_offset"][()].tolist() == [0, 12, 24] and h5["row_count"][()].tolist() == [12, 12, 12]
        assert h5["first_row"][()].tolist() == [19, 19, 19] and h5.attrs["column_start"] == 0
        assert h5["name"].dtype == np.dtype("S20")
        assert {h5[k].dtype for k in ("label", "setup", "camera", "performer", "replication")} == {np.dtype(np.int16)}
        assert h5["frames"].dtype == np.int32
    image = samples.read_images(out, [1])[0]
    np.testing.assert_allclose(image[19, :25], expected(BODY), atol=1e-6)  # 12 frames: 19 rows before
    columns, attrs = storage.read_metadata(out)
    np.testing.assert_array_equal(columns["label"], [0, 1, 2])
    np.testing.assert_array_equal(columns["setup"], [1, 1, 1])
    np.testing.assert_array_equal(columns["camera"], [2, 2, 2])
    np.testing.assert_array_equal(columns["performer"], [3, 3, 3])
    np.testing.assert_array_equal(columns["replication"], [1, 1, 1])
    np.testing.assert_array_equal(columns["frames"], [12, 12, 12])
    assert attrs["format"] == "mans-hdf5/2" and attrs["dataset"] == "ntu60" and attrs["mode"] == "faithful"
    assert attrs["size"] == 50 and attrs["num_classes"] == 60 and len(attrs["class_names"]) == 60
    assert attrs["joint_layout"] == {"bodies": 2, "joints": 25, "padded_to": 50}
    assert attrs["axes"] == "sample,time,joint,coord" and attrs["command"] == "python process_data.py --x"
    assert attrs["mans_version"] and attrs["created"].startswith("20")


def test_cropped_rows_keep_negative_zeros():
    image = np.zeros((50, 50, 3), np.float32)
    image[20:30, :25] = np.random.default_rng(0).normal(size=(10, 25, 3))
    image[31, 3, 1] = -0.0  # a negated empty frame: data, not padding
    first, rows = samples.crop_rows(image)
    assert (first, len(rows)) == (20, 12)
    assert samples.crop_rows(np.zeros((50, 50, 3), np.float32))[1].shape == (0, 50, 3)


def test_denoised_mode_keeps_the_last_frame_sample(bad_folder, tmp_path):
    summary = storage.convert_folder(bad_folder, tmp_path / "d.h5", mode="denoised", workers=1, progress=False)
    assert "last-frame-3+bodies" not in summary.skipped and summary.kept == 5  # 3 good, A016, A017


def test_denoised_mode_reports_the_bodies_dropped_as_noise(bad_folder, tmp_path):
    summary = storage.convert_folder(bad_folder, tmp_path / "d.h5", mode="denoised", workers=2, progress=False)
    assert summary.noise_report_path == tmp_path / "d.denoised.csv" and "noise report" in summary.line()
    with open(summary.noise_report_path, newline="") as handle:
        rows = list(csv.reader(handle))
    crowd = "S002C001P001R001A017"  # the two bodies of its last frame are listed once: length <= 11
    assert rows == [["name", "body_id", "rule"], [crowd, str(BODY_ID + 1), "length"],
                    [crowd, str(BODY_ID + 2), "length"]]
    faithful = storage.convert_folder(bad_folder, tmp_path / "f.h5", workers=1, progress=False)
    assert faithful.noise_report_path is None and not (tmp_path / "f.denoised.csv").exists()


def test_strict_makes_a_skip_an_error(bad_folder, tmp_path):
    out = tmp_path / "strict.h5"
    with pytest.raises(ValueError, match="S002C001P001A018 skipped \\(bad-name\\).*strict"):
        storage.convert_folder(bad_folder, out, workers=1, strict=True, progress=False,
                               missing_list=tmp_path / "missing.txt")
    assert list(tmp_path.glob("strict*")) == []
    good = tmp_path / "good"
    put(good, "S001C001P001R001A001", good_text())
    put(good, "S001C001P001R001A002", good_text())
    (tmp_path / "listed.txt").write_text("S001C001P001R001A002.skeleton\n")
    summary = storage.convert_folder(good, out, workers=1, strict=True, missing_list=tmp_path / "listed.txt",
                                     progress=False)
    assert summary.kept == 1 and summary.skipped == {"missing-list": 1}  # asked for: not an error


def test_no_overwrite_without_overwrite(bad_folder, tmp_path):
    out = tmp_path / "o.h5"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        storage.convert_folder(bad_folder, out, workers=1, progress=False)
    assert out.read_bytes() == b"precious"
    storage.convert_folder(bad_folder, out, workers=1, overwrite=True, limit=2, progress=False)
    assert storage.read_metadata(out)[1]["kept"] == 2


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_interrupted_run_leaves_nothing_half_written(bad_folder, tmp_path, monkeypatch, error):
    out = tmp_path / "i.h5"
    out.write_bytes(b"previous")
    calls = []
    original = storage._convert_one

    def failing(path, *args, **settings):
        calls.append(path)
        if len(calls) == 3:
            raise error
        return original(path, *args, **settings)

    monkeypatch.setattr(storage, "_convert_one", failing)
    with pytest.raises(type(error)):
        storage.convert_folder(bad_folder, out, workers=1, overwrite=True, progress=False)
    assert len(calls) == 3
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.h5", "missing.txt", "skeletons"]


def test_same_bytes_whatever_the_worker_count(tmp_path):
    folder = tmp_path / "syn"
    write_synthetic_dataset(folder, 24, num_actions=6, seed=1, frames=(30, 90))
    chunks = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.h5"
        summary = storage.convert_folder(folder, out, workers=workers, progress=False)
        assert summary.kept == 24
        with h5py.File(out) as h5:
            chunks.append([h5[key][()].tobytes() for key in ("rows", *samples.ROW_COLUMNS)])
            assert h5["rows"][:].any()
    assert chunks[0] == chunks[1]


def test_bounded_window_and_many_workers(tmp_path):
    folder = tmp_path / "syn"
    write_synthetic_dataset(folder, 40, num_actions=4, seed=2, frames=(20, 40))
    reference = tmp_path / "a.h5"
    storage.convert_folder(folder, reference, workers=1, progress=False)
    storage.convert_folder(folder, tmp_path / "b.h5", workers=3, progress=False)
    assert samples.read_images(reference).tobytes() == samples.read_images(tmp_path / "b.h5").tobytes()


def test_dataset_detection(tmp_path):
    folder = tmp_path / "s"
    put(folder, "S018C001P001R001A061", good_text())
    put(folder, "S001C001P001R001A001", good_text())
    assert storage.convert_folder(folder, tmp_path / "a.h5", workers=1, progress=False).dataset == "ntu120"
    assert storage.read_metadata(tmp_path / "a.h5")[1]["num_classes"] == 120
    with pytest.raises(ValueError, match="actions 1-60.*A061"):
        storage.convert_folder(folder, tmp_path / "b.h5", dataset="ntu60", workers=1, progress=False)


def test_input_and_argument_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        storage.convert_folder(tmp_path / "nowhere", tmp_path / "o.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="found none"):
        storage.convert_folder(tmp_path / "empty", tmp_path / "o.h5")
    put(tmp_path / "one", "S001C001P001R001A001", good_text())
    with pytest.raises(FileNotFoundError, match="missing-sample list"):
        storage.convert_folder(tmp_path / "one", tmp_path / "o.h5", missing_list=tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="mode"):
        storage.convert_folder(tmp_path / "one", tmp_path / "o.h5", mode="raw")
    with pytest.raises(ValueError, match="workers >= 1"):
        storage.convert_folder(tmp_path / "one", tmp_path / "o.h5", workers=0)
    put(tmp_path / "bad", "S001C001P001R001A001", "0\r\n")
    with pytest.raises(ValueError, match="at least one usable sample"):
        storage.convert_folder(tmp_path / "bad", tmp_path / "o.h5", workers=1, progress=False)
    assert not (tmp_path / "o.h5").exists() and (tmp_path / "o.skipped.csv").exists()


def test_read_metadata_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="process_data.py"):
        storage.read_metadata(tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ValueError, match="expected an HDF5 file"):
        storage.read_metadata(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5.attrs["format"] = "something"
    with pytest.raises(ValueError, match="format 'something'"):
        storage.read_metadata(tmp_path / "other.h5")


def test_skipped_attr_is_json(bad_folder, tmp_path):
    storage.convert_folder(bad_folder, tmp_path / "j.h5", workers=1, progress=False)
    with h5py.File(tmp_path / "j.h5") as h5:
        assert json.loads(h5.attrs["skipped"])["bad-name"] == 2
