"""Every backend the README names trains, resumes after a kill, and evaluates through the scripts, and a checkpoint
moves between backends. Each backend runs where it is installed (JAX for the CPU is a small install; PyTorch from
the registry is a multi-GB CUDA build) and is skipped with the reason elsewhere."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest
from test_data import make_synthetic_h5

from mans.training import callbacks

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--benchmark", "xsub", "--epochs", "2", "--batch-size", "8", "--steps-per-epoch", "2", "--gru-units", "4",
        "--val", "none", "--bn-recompute", "--augment", "--mirror", "0.5"]


def script(backend: str, name: str, *argv, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, str(REPO / name), *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, env=environment, timeout=600)


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    return make_synthetic_h5(REPO, tmp_path_factory.mktemp("backends"), samples=40, actions=4)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_resume_and_evaluate_on_the_backend(backend, h5, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    out = tmp_path / "run"
    killed = script(backend, "train_MANs.py", "--data", h5, "--out", out, *TINY,
                    env={callbacks.KILL_AFTER_EPOCH_ENV: "1"})
    assert killed.returncode == 137, killed.stderr[-3000:]
    resumed = script(backend, "train_MANs.py", "--data", h5, "--out", out, *TINY)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "epochs 2-2" in resumed.stdout and "BatchNormalization statistics recomputed" in resumed.stdout
    on_it = script(backend, "evaluate.py", out / "best.keras", "--data", h5, "--benchmark", "xsub", "--out",
                   tmp_path / "here")
    on_tensorflow = script("tensorflow", "evaluate.py", out / "best.keras", "--data", h5, "--benchmark", "xsub",
                           "--out", tmp_path / "tf")
    assert on_it.returncode == 0 and on_tensorflow.returncode == 0, on_it.stderr[-3000:] + on_tensorflow.stderr[-3000:]
    top1 = [line.split()[1] for line in (on_it.stdout + on_tensorflow.stdout).splitlines() if line.startswith("top-1")]
    assert len(top1) == 2 and top1[0] == top1[1]  # the same checkpoint scores the same on both backends
