"""The whole pipeline on synthetic recordings: process_data.py -> train_MANs.py (killed after epoch 1 and
resumed: the same weights as an uninterrupted run) -> evaluate.py in a fresh process."""

import concurrent.futures
import csv
import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from test_data import load_script, make_synthetic_h5

from mans.training import callbacks
from mans.training import data as data_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
# --augment: the random input transforms must also come back exactly after a resume
TRAIN = ["--benchmark", "xsub", "--epochs", "2", "--batch-size", "8", "--steps-per-epoch", "2", "--gru-units", "8",
         "--augment"]


def script(name: str, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / name), *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=environment,
        timeout=600,
    )


def killed_then_resumed(h5: pathlib.Path, out: pathlib.Path) -> dict:
    """A run killed after epoch 1, then resumed, in two fresh processes."""
    killed = script("train_MANs.py", "--data", h5, "--out", out, *TRAIN, env={callbacks.KILL_AFTER_EPOCH_ENV: "1"})
    assert killed.returncode == 137, killed.stderr[-3000:]
    after_kill = {
        "state": json.loads((out / "state.json").read_text()),
        "log_rows": (out / "log.csv").read_text().count("\n") - 1,
    }
    finished = script("train_MANs.py", "--data", h5, "--out", out, *TRAIN)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return {"after_kill": after_kill, "stdout": finished.stdout}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run (in this process) and, at the same time in a thread, a run killed after epoch 1
    then resumed (subprocesses): the two take turns at the cores instead of waiting for each other."""
    folder = tmp_path_factory.mktemp("e2e")
    h5 = make_synthetic_h5(REPO, folder, samples=100)
    straight, resumed = folder / "straight", folder / "resumed"
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        interrupted = pool.submit(killed_then_resumed, h5, resumed)
        assert load_script(REPO, "train_MANs").main(["--data", str(h5), "--out", str(straight), *TRAIN]) == 0
        interrupted = interrupted.result()
    return {"h5": h5, "straight": straight, "resumed": resumed, **interrupted}


def stored_arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Every array of a .keras file: the model's weights and the optimizer's variables."""
    arrays = {}
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_resumed_run_ends_with_the_same_weights(runs):
    assert runs["after_kill"]["state"]["epochs_done"] == 1 and runs["after_kill"]["log_rows"] == 1
    assert "epochs 2-2" in runs["stdout"] and "done: best val_accuracy" in runs["stdout"]
    for name in ("last.keras", "best.keras"):
        straight, resumed = stored_arrays(runs["straight"] / name), stored_arrays(runs["resumed"] / name)
        assert straight.keys() == resumed.keys() and any("optimizer" in k for k in straight)
        for key in straight:
            assert np.array_equal(straight[key], resumed[key]), (name, key)
    assert (runs["straight"] / "log.csv").read_bytes() == (runs["resumed"] / "log.csv").read_bytes()
    state = json.loads((runs["resumed"] / "state.json").read_text())
    expected = json.loads((runs["straight"] / "state.json").read_text())
    for key in ("epochs_done", "best_epoch", "best_value", "reduce_lr", "last_logs"):
        assert state[key] == expected[key]
    config = json.loads((runs["resumed"] / "config.json").read_text())
    assert len(config["resumed"]) == 1 and config["config"]["epochs"] == 2
    assert (
        any((runs["resumed"] / "tensorboard").rglob("events.out.tfevents.*"))
        or not (runs["resumed"] / "tensorboard").exists()
    )


def test_evaluate_in_a_fresh_process(runs, tmp_path):
    out = tmp_path / "eval"
    result = script(
        "evaluate.py", runs["resumed"] / "best.keras", "--data", runs["h5"], "--benchmark", "xsub", "--out", out
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"top-1 {metrics['top1']:.2%}" in result.stdout
    assert 0 <= metrics["mean_class_accuracy"] <= 1 and metrics["top1"] <= metrics["top5"] <= 1
    data = data_lib.open_data(runs["h5"])
    names = (out / "scores_names.txt").read_text().split()
    rows = np.searchsorted(data.names, names)
    assert list(data.names[rows]) == names == sorted(names)
    scores = np.load(out / "scores.npy")
    assert metrics["num_samples"] == len(names) == len(scores)
    assert metrics["top1"] == float(np.mean(scores.argmax(1) == data.labels[rows]))
    with open(out / "confusion_matrix.csv") as f:
        matrix = np.array([[int(v) for v in row[1:]] for row in list(csv.reader(f))[1:]])
    assert matrix.shape == (60, 60) and matrix.sum() == len(names)
    assert np.trace(matrix) == round(metrics["top1"] * len(names))


def test_skeleton_files_are_classified_like_the_training_data(runs, capsys):
    files = sorted((runs["h5"].parent / "raw").glob("*.skeleton"))[:2]
    evaluate_script = load_script(REPO, "evaluate")
    assert evaluate_script.main([str(runs["resumed"] / "best.keras"), "--skeleton", *map(str, files)]) == 0
    printed = capsys.readouterr().out
    assert all(str(f) in printed for f in files) and printed.count("  5. ") == 2
