"""process_data.py as users run it: a subprocess, synthetic folder -> HDF5, one-line errors, no Keras."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from mans.formats.ntu import parse_sample_name
from mans.preprocessing import datasets, samples, splits, storage
from mans.preprocessing.synthetic import write_synthetic_dataset


def run(repo_root, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    result = subprocess.run([sys.executable, str(repo_root / "process_data.py"), *args], cwd=repo_root,
                            capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_synthetic_folder_to_hdf5(repo_root, tmp_path):
    folder, out = tmp_path / "syn", tmp_path / "data" / "syn.h5"
    made = run(repo_root, "--synthetic", str(folder), "--samples", "36", "--actions", "6", "--seed", "3")
    assert "wrote 36" in made.stdout
    result = run(repo_root, "--skeletons", str(folder), "--out", str(out), "--workers", "2", "--mode", "denoised")
    assert result.stdout.count("\n") == 1 and "kept 36 of 36 files" in result.stdout
    assert "files/s" in result.stdout
    columns, attrs = storage.read_metadata(out)
    names = sorted(p.stem for p in folder.glob("*.skeleton"))
    assert list(columns["name"]) == names
    parsed = [parse_sample_name(name) for name in names]
    np.testing.assert_array_equal(columns["label"], [p.action - 1 for p in parsed])
    np.testing.assert_array_equal(columns["performer"], [p.performer for p in parsed])
    np.testing.assert_array_equal(columns["camera"], [p.camera for p in parsed])
    assert set(columns["label"]) == set(range(6))
    assert attrs["mode"] == "denoised" and attrs["dataset"] == "ntu60" and attrs["kept"] == 36
    assert attrs["command"] == " ".join([str(repo_root / "process_data.py"), "--skeletons", str(folder), "--out",
                                         str(out), "--workers", "2", "--mode", "denoised"])
    assert attrs["class_names"] == list(datasets.ACTION_NAMES[:60])
    x = samples.read_images(out)
    assert x.shape == (36, 50, 50, 3) and x.dtype == np.float32 and np.isfinite(x).all()
    assert all(x[i].any() for i in range(36))
    for benchmark in ("xsub", "xview"):
        mask = splits.split_mask(columns, "ntu60", benchmark)
        assert 0 < mask.sum() < 36
    assert (tmp_path / "data" / "syn.skipped.csv").read_text().startswith("name,reason,message")


def test_synthetic_and_convert_in_one_command(repo_root, tmp_path):
    out = tmp_path / "one.h5"
    result = run(repo_root, "--synthetic", str(tmp_path / "s"), "--samples", "8", "--actions", "2",
                 "--out", str(out), "--size", "64", "--quiet")
    assert "kept 8 of 8" in result.stdout
    with h5py.File(out) as h5:
        assert h5["row_count"].shape == (8,) and h5["rows"].shape[1:] == (50, 3) and h5.attrs["size"] == 64
    assert samples.read_images(out).shape == (8, 64, 64, 3)
    result = run(repo_root, "--synthetic", str(tmp_path / "s"), "--samples", "3", "--actions", "2",
                 "--out", str(out), "--quiet", "--overwrite")
    assert "kept 3 of 3" in result.stdout  # the 8 earlier files were replaced, not added to


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_user_errors_are_one_line(repo_root, tmp_path):
    one_line_error(run(repo_root, "--skeletons", str(tmp_path / "none"), "--out", str(tmp_path / "o.h5"),
                       check=False), "none", "not found")
    (tmp_path / "empty").mkdir()
    one_line_error(run(repo_root, "--skeletons", str(tmp_path / "empty"), "--out", str(tmp_path / "o.h5"),
                       check=False), ".skeleton files")
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "S001C001P001R001A001.skeleton").write_text("1\r\n1\r\n")
    (tmp_path / "o.h5").write_text("old")
    one_line_error(run(repo_root, "--skeletons", str(folder), "--out", str(tmp_path / "o.h5"), check=False),
                   "--overwrite")
    one_line_error(run(repo_root, "--skeletons", str(folder), "--out", str(tmp_path / "p.h5"), "--strict",
                       check=False), "truncated", "strict")
    assert not (tmp_path / "p.h5").exists() and not (tmp_path / "p.h5.tmp").exists()
    one_line_error(run(repo_root, "--skeletons", str(folder), check=False), "--out")
    one_line_error(run(repo_root, "--synthetic", str(tmp_path / "x"), check=False), "--samples")
    one_line_error(run(repo_root, "--synthetic", str(folder), "--samples", "2", check=False), "--overwrite")


def test_argparse_rejects_unknown_choices(repo_root, tmp_path):
    result = run(repo_root, "--skeletons", str(tmp_path), "--out", "o.h5", "--mode", "raw", check=False)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def imported_modules(repo_root, *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", str(repo_root / "process_data.py"), *args],
                            cwd=repo_root, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(repo_root)})
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}


def test_no_deep_learning_import(repo_root, tmp_path):
    for args in (["--help"], ["--synthetic", str(tmp_path / "s"), "--samples", "2", "--out", str(tmp_path / "o.h5")]):
        imported = imported_modules(repo_root, *args)
        assert "h5py" in imported and "numpy" in imported
        assert not imported & {"tensorflow", "keras", "torch", "jax"}


def _stalled_conversion(repo_root, tmp_path, workers: int) -> tuple[subprocess.Popen, pathlib.Path]:
    """process_data.py on 12 files and a last `.skeleton` that is a FIFO nobody writes: the conversion stalls
    there for good, with its temporary output open (no race with the end of the run)."""
    folder, out = tmp_path / "syn", tmp_path / "out.h5"
    write_synthetic_dataset(folder, 12, num_actions=4, seed=5, frames=(20, 40))
    os.mkfifo(folder / "S017C003P040R002A001.skeleton")
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    proc = subprocess.Popen([sys.executable, str(repo_root / "process_data.py"), "--skeletons", str(folder), "--out",
                             str(out), "--workers", str(workers), "--quiet"], cwd=repo_root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tmp = out.with_name(out.name + ".tmp")
    deadline = time.monotonic() + 120
    while not tmp.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the conversion never opened its temporary output"
        time.sleep(0.1)
    return proc, out


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_removes_the_temporary_output(repo_root, tmp_path, workers):
    proc, out = _stalled_conversion(repo_root, tmp_path, workers)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)  # returns once every worker has closed stderr too
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM); no output written" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["syn"]  # no out.h5, no .tmp, no report


def test_workers_end_quietly_when_their_parent_is_killed(repo_root, tmp_path):
    proc, _ = _stalled_conversion(repo_root, tmp_path, workers=2)
    children = pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    workers = children.read_text().split() if children.exists() else []
    proc.kill()
    _, stderr = proc.communicate(timeout=60)  # EOF on stderr: every worker has ended
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"workers still running: {[pid for pid in workers if _alive(pid)]}"
        time.sleep(0.1)


def _alive(pid: str) -> bool:
    """Whether process `pid` still runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return False
