"""Every Keras backend the README names, through the scripts: train, a kill after epoch 1 and a resume, evaluation
on the backend itself and on TensorFlow (a checkpoint moves between backends), and the training wall time.

Backends whose package is not installed are listed as skipped. PyTorch from the registry is a multi-GB CUDA build,
so it is usually checked from an environment of its own:

    python bench/bench_backends.py                           # tensorflow, jax, torch: those installed
    python -m venv --system-site-packages /tmp/torchenv && /tmp/torchenv/bin/pip install torch
    /tmp/torchenv/bin/python bench/bench_backends.py --backends torch
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN = ["--benchmark", "xsub", "--epochs", "3", "--batch-size", "16", "--steps-per-epoch", "4", "--val", "none",
         "--augment", "--mirror", "0.5", "--bn-recompute"]


def script(backend: str, name: str, *argv, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO),
                   **(env or {})}
    return subprocess.run([sys.executable, str(REPO / name), *map(str, argv)], capture_output=True, text=True,
                          cwd=REPO, env=environment, timeout=1800)


def top1(done: subprocess.CompletedProcess) -> str:
    match = re.search(r"^top-1 (\S+)", done.stdout, re.MULTILINE)
    return match[1] if match else "?"


def check(backend: str, data: pathlib.Path, work: pathlib.Path) -> str:
    """One line: the backend's version, training time, resume and evaluation results."""
    version = subprocess.run([sys.executable, "-c", f"import {backend}; print({backend}.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    straight = script(backend, "train_MANs.py", "--data", data, "--out", work / f"{backend}-straight", *TRAIN)
    seconds = time.perf_counter() - started
    if straight.returncode:
        return f"{backend} {version}: training failed: {straight.stderr.strip().splitlines()[-1]}"
    killed = script(backend, "train_MANs.py", "--data", data, "--out", work / f"{backend}-resumed", *TRAIN,
                    env={"MANS_TEST_KILL_AFTER_EPOCH": "1"})
    resumed = script(backend, "train_MANs.py", "--data", data, "--out", work / f"{backend}-resumed", *TRAIN)
    resume = "resumed" if killed.returncode == 137 and resumed.returncode == 0 else "resume FAILED"
    checkpoint = work / f"{backend}-straight" / "best.keras"
    here = script(backend, "evaluate.py", checkpoint, "--data", data, "--out", work / f"{backend}-eval")
    there = script("tensorflow", "evaluate.py", checkpoint, "--data", data, "--out", work / f"{backend}-tf")
    same = "the same" if top1(here) == top1(there) != "?" else "DIFFERENT"
    return (f"{backend} {version}: 3 epochs of 4 steps trained in {seconds:.0f} s (process start and compilation "
            f"included); kill after epoch 1: {resume}; top-1 {top1(here)} on {backend}, {top1(there)} on "
            f"tensorflow ({same})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        data = work / "synthetic.h5"
        subprocess.run([sys.executable, str(REPO / "process_data.py"), "--synthetic", str(work / "raw"), "--samples",
                        "60", "--actions", "4", "--out", str(data), "--quiet"], check=True, capture_output=True)
        for backend in args.backends:
            if importlib.util.find_spec(backend) is None:
                print(f"{backend}: skipped (not installed)")
                continue
            print(check(backend, data, work), flush=True)


if __name__ == "__main__":
    main()
