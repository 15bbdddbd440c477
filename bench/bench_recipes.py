"""The small-data recipe study on real recordings (issue: reach the paper on UT-Kinect and MSR Action3D).

For each recipe, the leave-one-subject-out estimate over the subjects present in the UT-Kinect folder (the
five training subjects in ../shared/data; no choice is ever made on a test subject) and its wall time per run;
then the chosen recipe's MSR Action3D cross-subject top-1 over seeds, and the TARM / augmentation ablation.

    python bench/bench_recipes.py --utkinect ../shared/data/utkinect_train --study
    python bench/bench_recipes.py --msr ../shared/data/msr_action3d --seeds 1 2 3
    python bench/bench_recipes.py --msr ../shared/data/msr_action3d --msr-loso --only identity
    python bench/bench_recipes.py --utkinect ../shared/data/utkinect_train --ablation
    python bench/bench_recipes.py --utkinect ../shared/data/utkinect_train --study --only crop --subjects 1 3
    python bench/bench_recipes.py --utkinect ../shared/data/utkinect_train --study --only hips \
        --init-from runs/msr-xsub/last.keras     # every UT-Kinect run fine-tuned from an MSR Action3D run

`--msr-loso` runs the MSR_STUDY recipes leave-one-subject-out over MSR Action3D's cross-subject training
subjects (1 3 5 7 9; the test subjects are left out of the converted file), the estimate on which an MSR
Action3D default may be chosen.

Each run trains through `mans.training.fit.train_one` with the recipe's flags over the dataset defaults, and is
scored on the held-out subject(s) with the checkpoint the run keeps (last.keras; best.keras is the same), alone
and with mirror test-time augmentation (its scores averaged with its mirror image's, evaluate.py --tta mirror).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mans.preprocessing import storage  # noqa: E402

# The steps measured, in order. Each is (preprocessing, flags): the process_data.py settings of the time axis
# ("frames"), of the sign fixes ("signs") and of the origin ("centre"), then train_MANs.py settings given as flags
# over the dataset's defaults.
DEMO_START = {"tarm_identity_start": False}  # the TARM started as the demo starts it, before the ninth session
DEMO_RECIPE = {**DEMO_START, "epochs": 60, "schedule": "plateau", "mirror": 0.0, "bn_recompute": False}
PAD = {"frames": "pad", "signs": "demo", "centre": "first"}
RESAMPLE = {"frames": "resample", "signs": "demo", "centre": "first"}
RIGID = {"frames": "resample", "signs": "rigid", "centre": "first"}
FRAME_CENTRE = {"frames": "resample", "signs": "rigid", "centre": "frame"}
FLOOR_CENTRE = {"frames": "resample", "signs": "rigid", "centre": "floor"}
TIMED = {"frames": "timed", "signs": "rigid", "centre": "frame"}
STUDY = {
    "previous default (60 plateau epochs)": (PAD, DEMO_RECIPE),
    "+ cosine 100 epochs, BN statistics recomputed": (PAD, {**DEMO_START, "mirror": 0.0}),
    "+ frames resampled onto all S rows": (RESAMPLE, {**DEMO_START, "mirror": 0.0}),
    "+ mirror 0.5": (RESAMPLE, DEMO_START),
    "+ temporal crop 0.2, label smoothing 0.1": (RESAMPLE, {**DEMO_START, "crop": 0.2, "label_smoothing": 0.1}),
    "+ rotation 60, scale 0.2, l2 5e-4": (RESAMPLE, {**DEMO_START, "rotation": 60.0, "scale": 0.2, "l2": 5e-4}),
    "+ rigid sign fixes": (RIGID, DEMO_START),
    "+ every frame centred on its hips": (FRAME_CENTRE, DEMO_START),
    "+ weight decay 5e-4 (tried, not adopted)": (FRAME_CENTRE, {**DEMO_START, "l2": 5e-4}),
    "+ label smoothing 0.1 (tried, not adopted)": (FRAME_CENTRE, {**DEMO_START, "label_smoothing": 0.1}),
    "+ hips centred in the horizontal plane only (--centre floor)": (FLOOR_CENTRE, DEMO_START),
    "+ frames resampled in time (--frames timed)": (TIMED, DEMO_START),
    "+ mixup 0.2": (FRAME_CENTRE, {**DEMO_START, "mixup": 0.2}),
    "+ rotation 60, scale 0.2": (FRAME_CENTRE, {**DEMO_START, "rotation": 60.0, "scale": 0.2}),
    "+ each TARM started as the identity (--tarm-identity-start)": (FLOOR_CENTRE, {"tarm_identity_start": True}),
}
MSR_STUDY = {
    "the default (each TARM started as the identity)": {},
    "each TARM started as the demo starts it (--no-tarm-identity-start)": DEMO_START,
}
ABLATION = {
    "TARM on, augmentation on (the default)": {},
    "TARM on, augmentation off": {"augment": False},
    "TARM off, augmentation on": {"use_tarm": False},
    "TARM off, augmentation off": {"use_tarm": False, "augment": False},
}


def convert(kind: str, folder: str, preprocessing: dict, work: pathlib.Path) -> pathlib.Path:
    """The folder converted with `preprocessing` ({"frames": ..., "signs": ..., "centre": ...}; missing: the
    dataset's)."""
    out = work / f"{kind}-{'-'.join(map(str, preprocessing.values())) or 'defaults'}.h5"
    if not out.exists():
        storage.convert_folder(folder, out, dataset=kind, progress=False, command="bench_recipes.py", **preprocessing)
    return out


def training_subjects_folder(folder: str, work: pathlib.Path) -> pathlib.Path:
    """A folder of links to the MSR Action3D recordings of the cross-subject training subjects only."""
    from mans.formats import msr_action3d
    from mans.preprocessing import datasets

    train = datasets.get_dataset("msr-action3d").description.splits["xsub"].train["performer"]
    linked = work / "msr-training-subjects"
    linked.mkdir(exist_ok=True)
    for path in msr_action3d.list_recordings(folder):
        if msr_action3d.parse_name(path).subject in train and not (linked / path.name).exists():
            (linked / path.name).symlink_to(path.resolve())
    return linked


def train_and_score(data: pathlib.Path, benchmark: str, flags: dict, seed: int, out: pathlib.Path) -> tuple:
    """(top-1 on the benchmark's test side, the same with mirror test-time augmentation, training seconds)."""
    from mans.evaluation import score as evaluation
    from mans.training import data as data_lib
    from mans.training import fit as training

    started = time.perf_counter()
    training.train_one({**flags, "data": str(data), "benchmark": benchmark, "out": str(out), "seed": seed,
                        "overwrite": True}, argv=["bench_recipes.py"])
    seconds = time.perf_counter() - started
    opened = data_lib.open_data(data)
    test = data_lib.select_splits(opened, benchmark, val="none").test
    model = evaluation.load_checkpoint(out / "last.keras")
    scores = evaluation.predict_scores(model, opened, test)
    mirrored = scores + evaluation.predict_scores(model, opened, test, tta="mirror")
    labels = opened.labels[test]
    return float((scores.argmax(1) == labels).mean()), float((mirrored.argmax(1) == labels).mean()), seconds


def loso(data: pathlib.Path, flags: dict, seeds: list[int], work: pathlib.Path, only: list[int] | None = None) -> dict:
    """Leave-one-subject-out over the subjects in `data` (or the `only` ones: a partial estimate)."""
    from mans.training import data as data_lib

    subjects = sorted(set(int(s) for s in data_lib.open_data(data).meta["performer"]))
    subjects = [s for s in subjects if only is None or s in only]
    accuracies, tta, seconds = [], [], []
    for seed in seeds:
        for subject in subjects:
            accuracy, mirrored, took = train_and_score(data, f"loso-{subject}", flags, seed,
                                                       work / f"s{seed}-loso{subject}")
            print(f"  seed {seed} loso-{subject}: {100 * accuracy:.1f} % (mirror TTA {100 * mirrored:.1f} %) "
                  f"in {took:.0f} s", flush=True)
            accuracies.append(accuracy)
            tta.append(mirrored)
            seconds.append(took)
    return summary(accuracies, tta, seconds)


def summary(accuracies: list[float], tta: list[float], seconds: list[float]) -> dict:
    return {"mean": 100 * float(np.mean(accuracies)), "std": 100 * float(np.std(accuracies)),
            "tta_mean": 100 * float(np.mean(tta)), "folds": [round(100 * a, 1) for a in accuracies],
            "seconds_per_run": float(np.mean(seconds)), "runs": len(accuracies)}


def machine() -> str:
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    return (f"{cpu}, {os.cpu_count()} cores; python {platform.python_version()}, "
            f"keras {keras.__version__}, tensorflow {tf.__version__}, numpy {np.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utkinect", help="a UT-Kinect folder (the training subjects)")
    parser.add_argument("--msr", help="an MSR Action3D folder")
    parser.add_argument("--study", action="store_true", help="every recipe step, leave-one-subject-out on UT-Kinect")
    parser.add_argument("--msr-loso", action="store_true", help="the MSR_STUDY recipes, leave-one-subject-out "
                        "over MSR Action3D's training subjects (with --msr)")
    parser.add_argument("--ablation", action="store_true", help="TARM x augmentation, leave-one-subject-out")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--only", help="run only the study recipes whose name contains this text")
    parser.add_argument("--init-from", help="a .keras checkpoint every --study run starts from (train_MANs.py "
                        "--init-from), e.g. an MSR Action3D run")
    parser.add_argument("--subjects", type=int, nargs="+", help="held-out subjects to run (default: every one; "
                        "fewer give a partial estimate, for a quick look only)")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        rows = []
        if args.utkinect and args.study:
            for name, (preprocessing, flags) in STUDY.items():
                if args.only and args.only not in name:
                    continue
                if args.init_from:
                    name, flags = f"{name}, fine-tuned from {args.init_from}", {**flags, "init_from": args.init_from}
                print(f"UT-Kinect LOSO: {name}", flush=True)
                data = convert("utkinect", args.utkinect, preprocessing, work)
                rows.append(("UT-Kinect LOSO", name, loso(data, flags, args.seeds, work / "runs", args.subjects)))
        if args.utkinect and args.ablation:
            for name, flags in ABLATION.items():
                print(f"UT-Kinect LOSO ablation: {name}", flush=True)
                data = convert("utkinect", args.utkinect, {}, work)
                rows.append(("UT-Kinect LOSO", name, loso(data, flags, args.seeds, work / "runs", args.subjects)))
        if args.msr and args.msr_loso:
            data = convert("msr-action3d", str(training_subjects_folder(args.msr, work)), {}, work)
            for name, flags in MSR_STUDY.items():
                if args.only and args.only not in name:
                    continue
                print(f"MSR Action3D LOSO over the training subjects: {name}", flush=True)
                rows.append(("MSR LOSO (train subj.)", name, loso(data, flags, args.seeds, work / "runs",
                                                                  args.subjects)))
        elif args.msr:
            data = convert("msr-action3d", args.msr, {}, work)
            results = []
            for seed in args.seeds:
                results.append(train_and_score(data, "xsub", {}, seed, work / f"msr-{seed}"))
                print(f"  MSR Action3D xsub seed {seed}: {100 * results[-1][0]:.1f} % (mirror TTA "
                      f"{100 * results[-1][1]:.1f} %) in {results[-1][2]:.0f} s", flush=True)
            rows.append(("MSR Action3D xsub", "the default", summary(*zip(*results, strict=True))))
        for protocol, name, result in rows:
            print(f"{protocol:20s} {name:50s} {result['mean']:5.1f} +- {result['std']:4.1f} % over {result['runs']} "
                  f"runs (mirror TTA {result['tta_mean']:.1f} %), {result['seconds_per_run']:.0f} s of training a run")
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
