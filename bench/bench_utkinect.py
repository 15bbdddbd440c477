"""UT-Kinect-Action3D end to end: preprocessing, training and evaluation with the scripts, as a user runs them.

    python bench/bench_utkinect.py UTKinect/              # a real folder (joints/, actionLabel.txt)
    python bench/bench_utkinect.py --synthetic            # the built-in synthetic UT-Kinect folder
    python bench/bench_utkinect.py --synthetic --ablation --loso

Default: process_data.py -> train_MANs.py --benchmark xsub (the dataset's defaults) -> evaluate.py, and prints
top-1 and the wall time. `--ablation` trains every cell of TARM on/off x augmentation on/off for `--seeds` seeds
(cross-subject) and prints mean +- std top-1 and mean wall time per cell; `--loso` runs the ten
leave-one-subject-out folds of the default configuration and prints their mean. Everything goes to --work.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]


def run(*command: str) -> float:
    """Run one of the repository's scripts; returns its wall time. Exits with its message when it fails."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def top1(metrics_file: pathlib.Path, key: str = "top1") -> float:
    return float(json.loads(metrics_file.read_text())[key])


def train_and_evaluate(data: pathlib.Path, out: pathlib.Path, *flags: str) -> tuple[float, float]:
    """(test top-1, training wall time) of one cross-subject run with extra train_MANs.py flags."""
    seconds = run("train_MANs.py", "--data", str(data), "--benchmark", "xsub", "--out", str(out), "--overwrite", *flags)
    run("evaluate.py", str(out / "best.keras"), "--data", str(data), "--benchmark", "xsub")
    return top1(out / "metrics.json"), seconds


def ablation(data: pathlib.Path, work: pathlib.Path, seeds: int) -> None:
    print(f"{'cell':<28} {'top-1 mean +- std':>18} {'runs':>5} {'train s/run':>12}")
    for tarm in (True, False):
        for augment in (True, False):
            name = f"TARM {'on' if tarm else 'off'}, augment {'on' if augment else 'off'}"
            flags = ["--augment" if augment else "--no-augment", *([] if tarm else ["--no-tarm"])]
            results = [
                train_and_evaluate(data, work / f"tarm{int(tarm)}-aug{int(augment)}-seed{seed}", *flags,
                                   "--seed", str(seed))
                for seed in range(seeds)
            ]
            accuracy = np.array([r[0] for r in results])
            seconds = np.mean([r[1] for r in results])
            print(f"{name:<28} {accuracy.mean():>9.1%} +- {accuracy.std():5.1%} {len(results):>5} {seconds:>12.0f}",
                  flush=True)


def loso(data: pathlib.Path, work: pathlib.Path) -> None:
    out = work / "loso"
    seconds = run("train_MANs.py", "--data", str(data), "--benchmark", "loso", "--out", str(out), "--overwrite")
    run("evaluate.py", str(out), "--data", str(data), "--benchmark", "loso")
    summary = json.loads((out / "loso_metrics.json").read_text())
    folds = ", ".join(f"{fold} {m['top1']:.0%}" for fold, m in summary["per_fold"].items())
    print(f"leave-one-subject-out, default configuration: top-1 {summary['top1']:.1%} +- {summary['top1_std']:.1%} "
          f"over {summary['folds']} folds ({folds}); training {seconds:.0f} s in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="UT-Kinect folder (joints/ and actionLabel.txt)")
    parser.add_argument("--synthetic", action="store_true", help="generate the synthetic UT-Kinect folder instead")
    parser.add_argument("--work", help="folder for the data and the runs (default: a temporary folder)")
    parser.add_argument("--ablation", action="store_true", help="TARM on/off x augmentation on/off, --seeds each")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--loso", action="store_true", help="also the ten leave-one-subject-out folds")
    args = parser.parse_args()
    if bool(args.folder) == args.synthetic:
        parser.error("give a UT-Kinect folder or --synthetic (one of them)")
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="mans-utkinect-"))
    work.mkdir(parents=True, exist_ok=True)
    import keras

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"Keras {keras.__version__} ({keras.config.backend()}); work folder {work}")
    data = work / "utkinect.h5"
    source = ["--synthetic", str(work / "skeletons")] if args.synthetic else ["--skeletons", args.folder]
    seconds = run("process_data.py", *source, "--dataset", "utkinect", "--out", str(data), "--overwrite", "--quiet")
    print(f"preprocessing: {seconds:.1f} s ({'synthetic' if args.synthetic else args.folder})")
    if args.ablation:
        ablation(data, work, args.seeds)
    else:
        accuracy, seconds = train_and_evaluate(data, work / "default")
        print(f"cross-subject, default configuration: top-1 {accuracy:.1%}, training {seconds:.0f} s")
    if args.loso:
        loso(data, work)


if __name__ == "__main__":
    main()
