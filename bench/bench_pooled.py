"""The pooled estimate every default is chosen on: leave-one-subject-out over the training subjects of all three
development datasets (UT-Kinect 1 3 5 7 9, MSR Action3D 1 3 5 7 9, UTD-MHAD 1 3 5 7), per dataset and as the mean
of the three, over seeds. No test subject of any dataset is read (but by --cross-subject, below).

    python bench/bench_pooled.py --data-root ../shared/data --recipes default --seeds 1 --jobs 2 --commit
    python bench/bench_pooled.py --report                  # every recipe measured so far, and against the default
    python bench/bench_pooled.py --report --baseline "demo TARM start" --pairs   # against another recipe
    python bench/bench_pooled.py --report --baseline "the default commands"      # against each dataset's default

One row per finished run (recipe, dataset, held-out subject, seed) is appended to `bench/pooled/rows.jsonl` as
soon as it finishes, and its test scores to `bench/pooled/scores.jsonl` (for the fused modalities); a run whose
row is there is not run again, so the same command resumes an interrupted study. `--commit` commits the two
files after every row. Each run is its own process pinned to one core (`taskset`, one thread), `--jobs` at a
time (`--cores 1` pins them to core 1 instead: two studies side by side). `--cross-subject --datasets msr-action3d`
runs MSR Action3D's cross-subject benchmark instead (subjects 1 3 5 7 9 against 2 4 6 8 10, the paper's protocol;
the only development set whose test subjects are in --data-root): a figure that reports and never chooses, with
rows of its own (`bench/pooled/xsub_rows.jsonl`, `xsub_scores.jsonl`).
The figure of a run is that of the default evaluation: mirror test-time augmentation where the run trained
on mirror images (evaluate.py's default), the image alone otherwise; both are kept.

A recipe is a preprocessing (process_data.py settings over the dataset's) and training flags (train_MANs.py
settings over the dataset's). "fused: A + B" rows of the report add the scores of recipes A and B run by run
(evaluate.py --ensemble with equal weights). The report pairs every recipe against --baseline by two rules: the
issue's for every dataset's default (`paired_against`), and ours for a dataset's own setting (`own_defaults`: over
a point on the mean of three seeds, and a gain on each).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROWS = HERE / "pooled" / "rows.jsonl"
SCORES = HERE / "pooled" / "scores.jsonl"
# --cross-subject: the paper's cross-subject figure of a dataset whose test subjects are in --data-root (MSR Action3D
# only; those of UT-Kinect and UTD-MHAD are held out): it reports, it never chooses, so it has files of its own
XSUB_ROWS = HERE / "pooled" / "xsub_rows.jsonl"
XSUB_SCORES = HERE / "pooled" / "xsub_scores.jsonl"
XSUB_DATASETS = ("msr-action3d",)
WORK = pathlib.Path(os.environ.get("MANS_POOLED_WORK", "/tmp/mans-pooled"))

# dataset: (built-in name, folder under --data-root, the training subjects whose folds are run)
DATASETS = {
    "utkinect": ("utkinect", "utkinect_train", (1, 3, 5, 7, 9)),
    "msr-action3d": ("msr-action3d", "msr_action3d", (1, 3, 5, 7, 9)),
    "utd-mhad": ("utd-mhad", "utd_mhad_train", (1, 3, 5, 7)),
}
# half the default augmentation strengths (rotation 30, scale 0.1), the recipes' "rotation 15 scale 0.05"
HALF_STRENGTHS = {"rotation": 15.0, "scale": 0.05}
# recipe: (preprocessing over the dataset's, training flags over the dataset's)
RECIPES: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "bone": ({"modality": "bone"}, {}),
    "motion": ({"modality": "motion"}, {}),
    "demo TARM start": ({}, {"tarm_identity_start": False}),
    "no mirror": ({}, {"mirror": 0.0}),
    "centre frame": ({"centre": "frame"}, {}),
    "frames pad": ({"frames": "pad"}, {}),
    "rotation 60 scale 0.2": ({}, {"rotation": 60.0, "scale": 0.2}),
    "rotation 15 scale 0.05": ({}, HALF_STRENGTHS),
    "epochs 50": ({}, {"epochs": 50}),
    "epochs 90": ({}, {"epochs": 90}),  # UTD-MHAD's default run is about 4 % over 10 minutes on 2 cores
    "no TARM": ({}, {"use_tarm": False}),
    "torso scale": ({"scale": "torso"}, {}),  # an idea of ours: the body-size normalisation of cross-subject methods
    "temporal crop 0.2": ({}, {"crop": 0.2}),  # an idea of ours: pyskl's random temporal crop, with its speed change
    "batch 32": ({}, {"batch_size": 32}),  # half the steps: UTD-MHAD's default run is over 10 minutes on 2 cores
    # UTD-MHAD's defaults today (the baseline pins the defaults the study started with: 100 epochs, identity start)
    "demo TARM start, epochs 90": ({}, {"tarm_identity_start": False, "epochs": 90}),
    "motion, epochs 90": ({"modality": "motion"}, {"epochs": 90}),
    # the motion stream with the TARM start MSR Action3D and UTD-MHAD chose for the joint stream
    "motion, demo TARM start": ({"modality": "motion"}, {"tarm_identity_start": False}),
    # an idea of ours: UT-Kinect's camera skips 1 to 9 frames between samples, so a difference of recorded frames is
    # no velocity there; on the capture times (--frames timed) the motion is one
    "motion, timed": ({"modality": "motion", "frames": "timed"}, {}),
    # half the strengths on the streams each dataset trains by default (COMMANDS), before the default changes
    "bone, rotation 15 scale 0.05": ({"modality": "bone"}, HALF_STRENGTHS),
    "demo TARM start, rotation 15 scale 0.05": ({}, {"tarm_identity_start": False, **HALF_STRENGTHS}),
    "motion, rotation 15 scale 0.05": ({"modality": "motion"}, HALF_STRENGTHS),
    "demo TARM start, epochs 90, rotation 15 scale 0.05": ({}, {"tarm_identity_start": False, "epochs": 90,
                                                                **HALF_STRENGTHS}),
    "motion, epochs 90, rotation 15 scale 0.05": ({"modality": "motion"}, {"epochs": 90, **HALF_STRENGTHS}),
}
# The study's baseline is the defaults it started with: settings a dataset's defaults changed since are pinned here,
# so that every row of a recipe, whenever it ran, trained the same way (UTD-MHAD's default became 90 epochs for its
# 10-minute budget, measured here as the recipe "epochs 90", and the demo's TARM start, the recipe "demo TARM start").
# The TARM start is pinned for every dataset: it is the setting the study may yet choose per dataset.
BASELINE = {"utkinect": {"tarm_identity_start": True}, "msr-action3d": {"tarm_identity_start": True},
            "utd-mhad": {"epochs": 100, "tarm_identity_start": True}}
# action pairs that differ only by side or direction (1-based action numbers of the dataset): UTD-MHAD's swipes to
# the left / right and clockwise / counter-clockwise circles, MSR Action3D's high / horizontal arm wave, and the
# pairs that are one another played backwards (UT-Kinect's sitDown / standUp and push / pull, UTD-MHAD's sit to
# stand / stand to sit), which a time augmentation that kept no order would confuse
PAIRS = {"utkinect": ((2, 3), (7, 8)), "utd-mhad": ((1, 2), (9, 10), (24, 25)), "msr-action3d": ((1, 2),)}
# a recipe training over COSTLY times as long as the default must gain on every seed, not on the mean alone
COSTLY = 1.25
# a dataset takes a setting of its own when it gains over OWN_GAIN points on the mean of OWN_SEEDS seeds and on each
OWN_SEEDS, OWN_GAIN = 3, 1.0
FUSED = {"fused: joint + bone": ("default", "bone"), "fused: joint + motion": ("default", "motion"),
         "fused: joint + bone + motion": ("default", "bone", "motion"),
         "fused: joint + motion, demo TARM start": ("demo TARM start", "motion, demo TARM start"),
         # each stream with the TARM start chosen on it: the demo's on MSR Action3D's and UTD-MHAD's joint stream,
         # the preset's identity on the motion stream (description: training.streams)
         "fused: joint (demo TARM start) + motion": ("demo TARM start", "motion"),
         # UTD-MHAD's default command: the same two streams at its 90 epochs
         "fused: joint (demo TARM start) + motion, epochs 90": ("demo TARM start, epochs 90", "motion, epochs 90"),
         # the joint stream's timed frames gave the same figure on every UT-Kinect fold (bench/RESULTS.md, issue #10)
         "fused: joint + motion, timed": ("default", "motion, timed"),
         "fused: joint + bone, rotation 15 scale 0.05": ("rotation 15 scale 0.05", "bone, rotation 15 scale 0.05"),
         "fused: joint (demo TARM start) + motion, rotation 15 scale 0.05": (
             "demo TARM start, rotation 15 scale 0.05", "motion, rotation 15 scale 0.05"),
         "fused: joint (demo TARM start) + motion, epochs 90, rotation 15 scale 0.05": (
             "demo TARM start, epochs 90, rotation 15 scale 0.05", "motion, epochs 90, rotation 15 scale 0.05")}
# what each dataset's default command trains, as a recipe (or a FUSED one) per dataset: a change of every dataset's
# default is checked on these before it lands, with `--baseline "the default commands"`
COMMANDS = {
    "the default commands": {"utkinect": "fused: joint + bone",
                             "msr-action3d": "fused: joint (demo TARM start) + motion",
                             "utd-mhad": "fused: joint (demo TARM start) + motion, epochs 90"},
    "the default commands, rotation 15 scale 0.05": {
        "utkinect": "fused: joint + bone, rotation 15 scale 0.05",
        "msr-action3d": "fused: joint (demo TARM start) + motion, rotation 15 scale 0.05",
        "utd-mhad": "fused: joint (demo TARM start) + motion, epochs 90, rotation 15 scale 0.05"},
}


def read_jsonl(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_scores(path: pathlib.Path) -> dict[str, dict]:
    """The stored test scores of each run, by its key."""
    return {entry["key"]: entry for entry in read_jsonl(path)}


def run_key(recipe: str, dataset: str, subject: int | None, seed: int) -> str:
    """The key of a run: its held-out subject's fold, or (subject None) the cross-subject benchmark."""
    return f"{recipe} | {dataset} | {benchmark_of(subject)} | seed {seed}"


def benchmark_of(subject: int | None) -> str:
    return "xsub" if subject is None else f"loso-{subject}"


def files_of(cross_subject: bool) -> tuple[pathlib.Path, pathlib.Path]:
    """The rows and scores files of the folds' runs, or of the cross-subject runs."""
    return (XSUB_ROWS, XSUB_SCORES) if cross_subject else (ROWS, SCORES)


def msr_training_folder(folder: pathlib.Path) -> pathlib.Path:
    """A folder of links to MSR Action3D's cross-subject training recordings (subjects 1 3 5 7 9) only."""
    from mans.formats import msr_action3d

    linked = WORK / "msr-training-subjects"
    linked.mkdir(parents=True, exist_ok=True)
    for path in msr_action3d.list_recordings(folder):
        if msr_action3d.parse_name(path).subject in DATASETS["msr-action3d"][2] and not (linked / path.name).exists():
            (linked / path.name).symlink_to(path.resolve())
    return linked


def converted(dataset: str, data_root: pathlib.Path, preprocessing: dict, test_subjects: bool = False) -> pathlib.Path:
    """The dataset's training subjects (with `test_subjects`: all of its folder) converted with `preprocessing`
    over its defaults (once; cached in WORK)."""
    from mans.preprocessing import storage

    name, folder, _ = DATASETS[dataset]
    tag = "-".join(f"{k}={v}" for k, v in sorted(preprocessing.items())) or "defaults"
    out = WORK / f"{dataset}{'-all' if test_subjects else ''}-{tag}.h5"
    if not out.exists():
        source = data_root / folder
        if dataset == "msr-action3d" and not test_subjects:
            source = msr_training_folder(source)
        storage.convert_folder(source, out, dataset=name, progress=False, command="bench_pooled.py", **preprocessing)
    return out


def train_or_resume(flags: dict) -> float:
    """Train one fold, resuming a run an interruption stopped (a folder of another config starts again).

    Returns the run's training seconds, those before an interruption included."""
    from mans.training import fit as training
    from mans.training.data import UsageError

    started = time.perf_counter()
    try:
        result = training.train_one({**flags, "overwrite": False}, argv=["bench_pooled.py"])
    except UsageError as error:
        print(f"  starting again: {error}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        result = training.train_one({**flags, "overwrite": True}, argv=["bench_pooled.py"])
    return max(time.perf_counter() - started, result.wall_time)


def run_one(job: dict) -> dict:
    """Train one fold and score its held-out subject: the row and the scores (in the file's row order)."""
    from mans.evaluation import score as evaluation
    from mans.training import data as data_lib

    preprocessing, flags = RECIPES[job["recipe"]]
    data = converted(job["dataset"], pathlib.Path(job["data_root"]), preprocessing, job["subject"] is None)
    benchmark = benchmark_of(job["subject"])
    out = WORK / "runs" / run_key(job["recipe"], job["dataset"], job["subject"], job["seed"]).replace(" | ", "_")
    run = {**BASELINE.get(job["dataset"], {}), **flags, "data": str(data), "benchmark": benchmark, "out": str(out),
           "seed": job["seed"]}
    seconds = train_or_resume(run)
    opened = data_lib.open_data(data)
    test = data_lib.select_splits(opened, benchmark, val="none").test
    model = evaluation.load_checkpoint(out / "last.keras")
    plain = evaluation.predict_scores(model, opened, test)
    mirrored = plain + evaluation.predict_scores(model, opened, test, tta="mirror")
    mirror_trained = float(json.loads((out / "config.json").read_text())["config"]["mirror"]) > 0
    scores = mirrored / 2 if mirror_trained else plain
    labels = opened.labels[test]
    row = {**job, "key": run_key(job["recipe"], job["dataset"], job["subject"], job["seed"]),
           "top1": 100 * float((scores.argmax(1) == labels).mean()),
           "top1_plain": 100 * float((plain.argmax(1) == labels).mean()),
           "top1_mirror_tta": 100 * float((mirrored.argmax(1) == labels).mean()),
           "evaluation": "mirror TTA" if mirror_trained else "image alone",
           "test_samples": int(len(test)), "train_seconds": round(seconds, 1)}
    del row["data_root"]
    return {"row": row, "scores": {"key": row["key"], "names": [str(n) for n in opened.names[test]],
                                   "labels": labels.tolist(), "scores": np.round(scores, 5).tolist()}}


def _run_pinned(job: dict, core: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    command = ["taskset", "-c", str(core), sys.executable, __file__, "--run-job", json.dumps(job)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"{job}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def _commit(message: str, files: tuple[pathlib.Path, pathlib.Path]) -> None:
    for _ in range(5):
        add = subprocess.run(["git", "-C", str(ROOT), "add", *map(str, files)], capture_output=True)
        done = subprocess.run(["git", "-C", str(ROOT), "commit", "-q", "-m", message, "--", *map(str, files)],
                              capture_output=True)
        if add.returncode == 0 and done.returncode == 0:
            return
        time.sleep(2)  # another git process held the index lock
    print(f"  (could not commit: {done.stderr.decode().strip()})", flush=True)


def _append(result: dict) -> None:
    rows, scores = files_of(result["row"]["subject"] is None)
    rows.parent.mkdir(parents=True, exist_ok=True)
    with open(rows, "a") as handle:
        handle.write(json.dumps(result["row"]) + "\n")
    with open(scores, "a") as handle:
        handle.write(json.dumps(result["scores"]) + "\n")


def pending_jobs(recipes: list[str], seeds: list[int], datasets: list[str], data_root: pathlib.Path,
                 cross_subject: bool = False) -> list[dict]:
    """The runs not yet in the rows: every fold of each dataset, or (`cross_subject`) its cross-subject benchmark."""
    done = {row["key"] for row in read_jsonl(files_of(cross_subject)[0])}
    jobs = []
    for recipe in recipes:
        for seed in seeds:
            for dataset in datasets:
                for subject in (None,) if cross_subject else DATASETS[dataset][2]:
                    if run_key(recipe, dataset, subject, seed) not in done:
                        jobs.append({"recipe": recipe, "dataset": dataset, "subject": subject, "seed": seed,
                                     "data_root": str(data_root)})
    return jobs


def run_study(jobs: list[dict], cores: list[int], commit: bool) -> None:
    """Runs `jobs`, one at a time on each of `cores` (two studies side by side take different cores)."""
    for job in jobs:  # convert once, before the workers race for the same file
        converted(job["dataset"], pathlib.Path(job["data_root"]), RECIPES[job["recipe"]][0], job["subject"] is None)
    workers, cores = len(cores), list(cores)
    print(f"{len(jobs)} runs to go, {workers} at a time (cores {' '.join(map(str, cores))})", flush=True)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {}
        for job in jobs:
            while len(futures) >= workers:
                finished, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in finished:
                    cores.append(futures.pop(future))
                    _record(future, commit)
            core = cores.pop(0)
            futures[pool.submit(_run_pinned, job, core)] = core
        for future in concurrent.futures.as_completed(futures):
            _record(future, commit)


def _record(future: concurrent.futures.Future, commit: bool) -> None:
    try:
        result = future.result()
    except RuntimeError as error:
        print(f"  failed: {error}", flush=True)
        return
    _append(result)
    row = result["row"]
    print(f"  {row['key']}: {row['top1']:.1f} % ({row['evaluation']}) in {row['train_seconds']:.0f} s", flush=True)
    if commit:
        _commit(f"bench/pooled: {row['key']}: {row['top1']:.1f} %", files_of(row["subject"] is None))


def _fused_rows(rows: list[dict], parts: tuple[str, ...], scores: dict[str, dict]) -> list[dict]:
    """Rows of the score fusion of `parts`, one per run (dataset, subject, seed) that every part has."""
    by_key = {row["key"]: row for row in rows}
    fused = []
    for row in rows:
        if row["recipe"] != parts[0]:
            continue
        keys = [run_key(part, row["dataset"], row["subject"], row["seed"]) for part in parts]
        if not all(key in by_key and key in scores for key in keys):
            continue
        labels = np.asarray(scores[keys[0]]["labels"])
        fused.append({**row, "top1": 100 * float((_fused_predictions(scores, keys) == labels).mean()), "parts": keys,
                      "train_seconds": sum(by_key[key]["train_seconds"] for key in keys)})
    return fused


def _fused_predictions(scores: dict[str, dict], keys: list[str]) -> np.ndarray:
    """The classes the summed scores of the runs `keys` predict (one key: the run's own)."""
    return sum(np.asarray(scores[key]["scores"]) for key in keys).argmax(1)


def report(groups: dict[str, list[dict]]) -> str:
    """The Markdown table: per recipe and seed, each dataset's mean over its folds, and the pooled mean."""
    names = list(DATASETS)
    lines = ["| recipe | seeds | " + " | ".join(names) + " | pooled mean | training s a run |",
             "|---|---|" + "---|" * len(names) + "---|---|"]
    for recipe, members in groups.items():
        seeds = sorted({row["seed"] for row in members})
        done = {d: [s for s in seeds if {row["subject"] for row in members if row["seed"] == s and row["dataset"] == d}
                    == set(DATASETS[d][2])] for d in names}
        complete = [s for s in seeds if all(s in done[d] for d in names)]
        cells = []
        for dataset in names:
            values = [np.mean([r["top1"] for r in members if r["dataset"] == dataset and r["seed"] == s])
                      for s in done[dataset]]
            cells.append(f"{np.mean(values):.1f}" if values else "-")
        pooled = np.mean([float(c) for c in cells]) if complete and all(done[d] == complete for d in names) else None
        seconds = np.mean([r["train_seconds"] for r in members])
        partial = "" if complete else f" (partial: {len(members)} runs)"
        shown = " ".join(map(str, complete)) or ", ".join(f"{d}: {' '.join(map(str, done[d]))}" for d in names
                                                            if done[d]) or "-"
        lines.append(f"| {recipe}{partial} | {shown} | " + " | ".join(cells)
                     + f" | {'-' if pooled is None else f'{pooled:.1f}'} | {seconds:.0f} |")
    return "\n".join(lines)


def cross_subject_report(groups: dict[str, list[dict]]) -> str:
    """The cross-subject test figures (report only): per recipe and dataset, each seed's top-1 and their mean."""
    lines = ["| recipe | dataset | seeds | top-1 per seed | mean |", "|---|---|---|---|---|"]
    for recipe, members in groups.items():
        for dataset in dict.fromkeys(row["dataset"] for row in members):
            chosen = sorted((row for row in members if row["dataset"] == dataset), key=lambda row: row["seed"])
            seeds = " ".join(str(row["seed"]) for row in chosen)
            figures = " ".join(f"{row['top1']:.1f}" for row in chosen)
            mean = np.mean([row["top1"] for row in chosen])
            lines.append(f"| {recipe} | {dataset} | {seeds} | {figures} | {mean:.1f} |")
    return "\n".join(lines)


def recipe_groups(rows: list[dict], scores: dict[str, dict]) -> dict[str, list[dict]]:
    """The rows by recipe, the FUSED rows that `scores` make of them, and the COMMANDS that pick a recipe per dataset:
    what every table of the report reads."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["recipe"], []).append(row)
    for name, parts in FUSED.items():
        fused = _fused_rows(rows, parts, scores)
        if fused:
            groups[name] = fused
    for name, per_dataset in COMMANDS.items():
        chosen = [row for dataset, recipe in per_dataset.items() for row in groups.get(recipe, [])
                  if row["dataset"] == dataset]
        if chosen:
            groups[name] = chosen
    return groups


def study_groups(cross_subject: bool) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """The recipe groups of the folds' rows (or the cross-subject ones) and the scores they were fused from."""
    rows_file, scores_file = files_of(cross_subject)
    scores = read_scores(scores_file)
    return recipe_groups(read_jsonl(rows_file), scores), scores


def paired_against(groups: dict[str, list[dict]], baseline: str = "default") -> str:
    """Per recipe, its top-1 minus the baseline's on the same runs (dataset, held-out subject, seed), per dataset
    and pooled, the pooled difference of each seed alone (the spread a verdict has to stand out of), its training time
    against the baseline's on the same runs, and the issue's rule: a recipe wins when the pooled difference is
    positive and no dataset loses more than a point, and (a recipe that trains over COSTLY times as long, as the
    fused streams do) every seed's pooled difference is positive; decided once every fold of every dataset is in."""
    base = {_run_of(r): r for r in groups.get(baseline, [])}
    names = list(DATASETS)
    lines = [f"| recipe | {' | '.join(f'{d}: difference (runs)' for d in names)} | pooled difference | per seed "
             "| training time | verdict |", "|---|" + "---|" * len(names) + "---|---|---|---|"]
    for recipe, members in groups.items():
        if recipe == baseline:
            continue
        paired = [r for r in members if _run_of(r) in base]
        cells, differences, complete = [], [], True
        for dataset in names:
            found = [_difference(r, base) for r in paired if r["dataset"] == dataset]
            seeds = {r["seed"] for r in members if r["dataset"] == dataset}
            complete &= bool(found) and len(found) == len(seeds) * len(DATASETS[dataset][2])
            cells.append(f"{np.mean(found):+.1f} ({len(found)})" if found else "-")
            differences.append(np.mean(found) if found else None)
        if not complete:
            lines.append(f"| {recipe} (partial) | {' | '.join(cells)} | - | - | - | - |")
            continue
        pooled = float(np.mean(differences))
        time = sum(r["train_seconds"] for r in paired) / sum(base[_run_of(r)]["train_seconds"] for r in paired)
        per_seed = _pooled_per_seed(paired, base)
        verdict = "wins" if pooled > 0 and min(differences) >= -1.0 else "does not win"
        if verdict == "wins" and time > COSTLY and min(per_seed.values()) <= 0:
            verdict = f"does not win: x{time:.2f} the training for a gain one seed does not show"
        shown = ", ".join(f"{seed}: {value:+.1f}" for seed, value in per_seed.items())
        lines.append(f"| {recipe} | {' | '.join(cells)} | {pooled:+.1f} | {shown} | x{time:.2f} | {verdict} |")
    return "\n".join(lines)


def _run_of(row: dict) -> tuple:
    return row["dataset"], row["subject"], row["seed"]


def _difference(row: dict, base: dict) -> float:
    return row["top1"] - base[_run_of(row)]["top1"]


def _pooled_per_seed(paired: list[dict], base: dict) -> dict[int, float]:
    """Each seed's pooled difference: the mean of its datasets' mean differences."""
    figures = {}
    for seed in sorted({r["seed"] for r in paired}):
        per_dataset = [np.mean([_difference(r, base) for r in paired if r["seed"] == seed and r["dataset"] == d])
                       for d in DATASETS if any(r["seed"] == seed and r["dataset"] == d for r in paired)]
        figures[seed] = float(np.mean(per_dataset))
    return figures


def pair_confusions(groups: dict[str, list[dict]], scores: dict[str, dict]) -> str:
    """Per recipe (the fused ones included), how often one action of a direction / side pair (PAIRS) was taken for
    the other, over every run: the check of what the mirror augmentation and the mirror test view do to such pairs."""
    lines = ["| recipe | dataset | pair | test samples | taken for the other | right |", "|---|---|---|---|---|---|"]
    for recipe, members in groups.items():
        for dataset, pairs in PAIRS.items():
            runs = [row.get("parts", [row["key"]]) for row in members if row["dataset"] == dataset]
            runs = [keys for keys in runs if all(key in scores for key in keys)]
            if not runs:
                continue
            labels = np.concatenate([scores[keys[0]]["labels"] for keys in runs])
            predicted = np.concatenate([_fused_predictions(scores, keys) for keys in runs])
            for a, b in pairs:
                inside = np.isin(labels, (a - 1, b - 1))
                swapped = int(((labels == a - 1) & (predicted == b - 1)).sum()
                              + ((labels == b - 1) & (predicted == a - 1)).sum())
                right = int((predicted[inside] == labels[inside]).sum())
                lines.append(f"| {recipe} | {dataset} | {a} / {b} | {int(inside.sum())} | {swapped} | {right} |")
    return "\n".join(lines)


def own_defaults(groups: dict[str, list[dict]], baseline: str = "default") -> str:
    """Per recipe and dataset, the rule for a dataset's own setting against `baseline` on the same runs: its own
    default when the mean difference over at least OWN_SEEDS complete seeds is over OWN_GAIN points and every seed
    gains; not, as soon as one seed does not gain."""
    base = {_run_of(r): r for r in groups.get(baseline, [])}
    lines = [f"| recipe | dataset | seeds | difference per seed (against {baseline}) | mean | verdict |",
             "|---|---|---|---|---|---|"]
    for recipe, members in groups.items():
        if recipe == baseline:
            continue
        for dataset, (_, _, subjects) in DATASETS.items():
            per_seed = {}
            for seed in sorted({r["seed"] for r in members if r["dataset"] == dataset}):
                paired = [r for r in members if r["dataset"] == dataset and r["seed"] == seed and _run_of(r) in base]
                if len(paired) == len(subjects):
                    per_seed[seed] = float(np.mean([_difference(r, base) for r in paired]))
            if not per_seed:
                continue
            mean = float(np.mean(list(per_seed.values())))
            if min(per_seed.values()) <= 0:
                verdict = "not its own default"  # every seed must gain: one that does not settles it
            elif len(per_seed) < OWN_SEEDS:
                verdict = f"open: {len(per_seed)} of {OWN_SEEDS} seeds"
            elif mean > OWN_GAIN:
                verdict = "its own default"
            else:
                verdict = "not its own default"
            seeds = " ".join(map(str, per_seed))
            shown = ", ".join(f"{seed}: {value:+.1f}" for seed, value in per_seed.items())
            lines.append(f"| {recipe} | {dataset} | {seeds} | {shown} | {mean:+.1f} | {verdict} |")
    return "\n".join(lines)


def machine() -> str:
    import platform

    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    return (f"{cpu}, {os.cpu_count()} cores; python {platform.python_version()}, keras {keras.__version__}, "
            f"tensorflow {tf.__version__}, numpy {np.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"),
                        help="the folder holding utkinect_train/, msr_action3d/ and utd_mhad_train/")
    parser.add_argument("--recipes", nargs="+", default=["default"], help=f"among: {', '.join(RECIPES)}")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS),
                        help="default: all three (with --cross-subject: msr-action3d)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, each pinned to its own core")
    parser.add_argument("--cores", type=int, nargs="+",
                        help="the cores to pin the runs to, one run each (default: the first --jobs cores)")
    parser.add_argument("--commit", action="store_true", help="git-commit the rows after each run")
    parser.add_argument("--report", action="store_true", help="print the table of the rows so far and stop")
    parser.add_argument("--pairs", action="store_true", help="with --report: also the direction / side pairs")
    parser.add_argument("--baseline", default="default",
                        help="with --report: the recipe (or fused row) the others are paired against")
    parser.add_argument("--cross-subject", action="store_true",
                        help="run the cross-subject benchmark (training subjects against the test subjects) of "
                        f"{', '.join(XSUB_DATASETS)} instead of the folds: a figure that reports, never chooses "
                        "(rows in bench/pooled/xsub_rows.jsonl)")
    parser.add_argument("--run-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_job:
        print(json.dumps(run_one(json.loads(args.run_job))))
        return
    if args.report:
        groups, scores = study_groups(cross_subject=False)
        print(report(groups))
        print(paired_against(groups, args.baseline))
        print(own_defaults(groups, args.baseline))
        if args.pairs:
            print(pair_confusions(groups, scores))
        if XSUB_ROWS.exists():
            print(cross_subject_report(study_groups(cross_subject=True)[0]))
        return
    unknown = [name for name in args.recipes if name not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; expected among {list(RECIPES)}")
    args.datasets = args.datasets or list(XSUB_DATASETS if args.cross_subject else DATASETS)
    held_out = sorted(set(args.datasets) - set(XSUB_DATASETS)) if args.cross_subject else []
    if held_out:
        parser.error(f"--cross-subject: the test subjects of {', '.join(held_out)} are held out")
    data_root = pathlib.Path(args.data_root)
    missing = [DATASETS[d][1] for d in args.datasets if not (data_root / DATASETS[d][1]).is_dir()]
    if missing:
        parser.error(f"{data_root}: expected the folder(s) {', '.join(missing)}")
    print(machine(), flush=True)
    cores = args.cores or list(range(args.jobs))
    run_study(pending_jobs(args.recipes, args.seeds, args.datasets, data_root, args.cross_subject), cores,
              args.commit)
    groups = study_groups(args.cross_subject)[0]
    print(cross_subject_report(groups) if args.cross_subject else report(groups))


if __name__ == "__main__":
    main()
