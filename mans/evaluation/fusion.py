"""Fuse the scores of several evaluations: any score files (`ensemble`), a seed ensemble (`evaluate_seeds`), or the
modalities of one run (`evaluate_modalities`).

A seed ensemble is the folder that `train_MANs.py --seeds 1 2 3 --out RUN` trains: one run per seed in
`RUN/seed-<seed>` (for a multi-fold benchmark such as "loso", one folder per fold inside each). `evaluate_seeds`
evaluates every member as `mans.evaluation.score.evaluate` does (reports beside each checkpoint), fuses their scores
by their mean, writes the fusion's reports into RUN (RUN/<fold> per fold) and a summary RUN/<benchmark>_seeds.json.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np

from mans.evaluation import score as evaluation
from mans.preprocessing import splits as splits_lib
from mans.preprocessing import storage
from mans.training import runfolder
from mans.training.data import UsageError


def scores_names_path(scores_path: str | os.PathLike) -> pathlib.Path:
    """The sample-name list of a score file: X.npy -> X_names.txt (scores.npy -> scores_names.txt)."""
    path = pathlib.Path(scores_path)
    return path.with_name(f"{path.stem}_names.txt")


def load_scores(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """A score file (N, C) and its N sample names; UsageError when either is missing or they disagree."""
    path = pathlib.Path(path)
    names_path = scores_names_path(path)
    try:
        scores = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: expected a .npy score file, found an unreadable file ({error})") from None
    if scores.ndim != 2:
        raise UsageError(f"{path}: expected scores of shape (samples, classes), found {scores.shape}")
    if not names_path.is_file():
        raise UsageError(f"{path}: expected its sample names in {names_path}, found no such file")
    names = names_path.read_text().split()
    if len(names) != len(scores):
        raise UsageError(f"{path}: {len(scores)} score rows, but {names_path} lists {len(names)} names")
    return scores, names


def ensemble(
    score_files: Sequence[str | os.PathLike],
    data_path: str | os.PathLike,
    benchmark: str,
    weights: Sequence[float] | None = None,
    out: str | os.PathLike | None = None,
) -> dict:
    """Fuse score files by a weighted sum and report the fused accuracy.

    Refuses files whose sample names differ (in count or order) or whose class counts differ, and
    files that do not cover exactly the test split of `benchmark` in `data_path`.

    Returns:
        Metrics of the fusion (top1, top5, mean_class_accuracy) and each file's top1 under "members".
        With `out`, the full reports of the fusion are written there.
    """
    if len(score_files) < 2:
        raise UsageError(f"--ensemble needs at least 2 score files, found {len(score_files)}")
    weights = [1.0] * len(score_files) if weights is None else [float(w) for w in weights]
    if len(weights) != len(score_files):
        raise UsageError(f"expected one weight per score file ({len(score_files)}), found {len(weights)}")
    loaded = [load_scores(path) for path in score_files]
    first_scores, first_names = loaded[0]
    for path, (scores, names) in zip(score_files[1:], loaded[1:], strict=True):
        if scores.shape != first_scores.shape:
            raise UsageError(f"{path}: scores of shape {scores.shape}, but {score_files[0]} has {first_scores.shape}")
        if names != first_names:
            raise UsageError(f"{path}: its samples differ in order or names from those of {score_files[0]}")
    data = evaluation.open_data_file(data_path)
    splits = evaluation.test_rows(data, benchmark)
    test_names = data.names[splits.test].tolist()
    if first_names != test_names:
        raise UsageError(
            f"the score files cover {len(first_names)} samples, but not exactly the {len(test_names)} samples of "
            f"the {benchmark} test split of {data.path} in name order"
        )
    if first_scores.shape[1] != data.num_classes:
        raise UsageError(f"the score files have {first_scores.shape[1]} classes, {data.path} has {data.num_classes}")
    labels = data.labels[splits.test]
    fused = sum(w * s.astype(np.float64) for w, (s, _) in zip(weights, loaded, strict=True)).astype(np.float32)
    members = [
        {"file": str(path), "weight": w, "top1": evaluation.summarize(s, labels, data.num_classes)["top1"]}
        for path, w, (s, _) in zip(score_files, weights, loaded, strict=True)
    ]
    info = {"data": str(data.path.resolve()), "benchmark": benchmark, "split": "test", "members": members}
    if out is not None:
        return evaluation.write_reports(pathlib.Path(out), fused, labels, first_names, data.class_names, info)
    summary = evaluation.summarize(fused, labels, data.num_classes)
    return {
        "top1": summary["top1"],
        "top5": summary["top5"],
        "mean_class_accuracy": summary["mean_class_accuracy"],
        **info,
        "num_samples": int(len(labels)),
    }


def _fold_means(per_fold: dict[str, dict], members: int) -> dict[str, object]:
    """The fused top1, top5 and mean_class_accuracy and each member's top1 ("member_top1"), means over the folds'
    fusions; the sample count and the per-fold metrics."""
    means: dict[str, object] = {key: float(np.mean([metrics[key] for metrics in per_fold.values()]))
                                for key in ("top1", "top5", "mean_class_accuracy")}
    means["member_top1"] = [
        float(np.mean([metrics["members"][k]["top1"] for metrics in per_fold.values()])) for k in range(members)
    ]
    means["num_samples"] = sum(int(metrics["num_samples"]) for metrics in per_fold.values())
    means["per_fold"] = per_fold
    return means


def evaluate_seeds(
    run_dir: str | os.PathLike,
    data_path: str | os.PathLike,
    benchmark: str,
    checkpoint_name: str = "best.keras",
    **options: object,
) -> dict:
    """Evaluate each member of the seed ensemble in `run_dir` and the mean of their scores.

    `options`: as for `mans.evaluation.score.evaluate`. Returns the summary written to `run_dir/<benchmark>_seeds.json`:
    the fused top1, top5 and mean_class_accuracy (means over the folds of a multi-fold benchmark), each seed's
    top1 ("member_top1", the same means) and the fused metrics of every fold ("per_fold").
    """
    run_dir = pathlib.Path(run_dir)
    members = runfolder.seed_folders(run_dir)
    if len(members) < 2:
        raise UsageError(
            f"{run_dir}: expected the seed-<seed> folders of at least 2 seeds, found {len(members)} (train them "
            f"with train_MANs.py --seeds 1 2 3 --out {run_dir})"
        )
    folds = splits_lib.folds(benchmark, evaluation.dataset_or_none(data_path))
    nested = len(folds) > 1
    checkpoints = {fold: [(member / fold if nested else member) / checkpoint_name for member in members]
                   for fold in folds}
    missing = evaluation.first_missing([path for paths in checkpoints.values() for path in paths])
    if missing:
        raise UsageError(f"expected {checkpoint_name} in every seed folder of {run_dir}, found none at {missing}")
    per_fold = {}
    for fold, paths in checkpoints.items():
        for path in paths:
            evaluation.evaluate(path, data_path, fold, **options)
        per_fold[fold] = ensemble([path.parent / "scores.npy" for path in paths], data_path, fold,
                                  weights=[1.0 / len(paths)] * len(paths), out=run_dir / fold if nested else run_dir)
    summary: dict[str, object] = {
        "benchmark": benchmark,
        "data": str(pathlib.Path(data_path).resolve()),
        "checkpoint": checkpoint_name,
        "seeds": [runfolder.seed_of(member) for member in members],
        "folds": len(folds),
    }
    summary.update(_fold_means(per_fold, len(members)))
    runfolder.write_json_atomic(run_dir / f"{benchmark}_seeds.json", summary)
    return summary



def _member_scores(folder: pathlib.Path, data_path: pathlib.Path, benchmark: str, folds: Sequence[str],
                   checkpoint_name: str, options: dict) -> dict[str, pathlib.Path]:
    """Evaluate one modality's run (a single run, its folds or its seed ensemble) on its own data file; the score
    file of each fold."""
    nested = len(folds) > 1
    if runfolder.seed_folders(folder):
        evaluate_seeds(folder, data_path, benchmark, checkpoint_name, **options)
    elif nested:
        evaluation.evaluate_folds(folder, data_path, benchmark, checkpoint_name, **options)
    else:
        checkpoint = folder / checkpoint_name
        if not checkpoint.is_file():
            raise UsageError(f"expected {checkpoint_name} in {folder}, found none")
        evaluation.evaluate(checkpoint, data_path, benchmark, **options)
    return {fold: (folder / fold if nested else folder) / "scores.npy" for fold in folds}


def evaluate_modalities(
    run_dir: str | os.PathLike,
    data_path: str | os.PathLike,
    benchmark: str,
    checkpoint_name: str = "best.keras",
    weights: Sequence[float] | None = None,
    **options: object,
) -> dict:
    """Evaluate each modality of `run_dir` (train_MANs.py --modalities: `run_dir/<modality>`) on its own converted
    file (`storage.modality_file` of `data_path`) and fuse their scores by a weighted sum (equal weights by
    default), as 2s-AGCN and CTR-GCN fuse their streams. Writes the fusion's reports into `run_dir` (`run_dir/<fold>`
    per fold) and returns the summary written to `run_dir/<benchmark>_modalities.json`: the fused top1, top5 and
    mean_class_accuracy (means over the folds) and each modality's top1 ("member_top1")."""
    run_dir = pathlib.Path(run_dir)
    members = runfolder.modality_folders(run_dir)
    if len(members) < 2:
        raise UsageError(f"{run_dir}: expected the folders of at least 2 modalities (joint, bone, motion), found "
                         f"{len(members)} (train them with train_MANs.py --modalities joint bone --out {run_dir})")
    try:
        files = {name: storage.modality_file(data_path, name) for name, _ in members}
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    folds = splits_lib.folds(benchmark, evaluation.dataset_or_none(data_path))
    nested = len(folds) > 1
    scores = {name: _member_scores(folder, files[name], benchmark, folds, checkpoint_name, options)
              for name, folder in members}
    weights = [1.0] * len(members) if weights is None else list(weights)
    first = files[members[0][0]]
    per_fold = {fold: ensemble([scores[name][fold] for name, _ in members], first, fold, weights=weights,
                               out=run_dir / fold if nested else run_dir) for fold in folds}
    summary: dict[str, object] = {"benchmark": benchmark, "data": {name: str(path.resolve()) for name, path in
                                                                   files.items()},
                                  "checkpoint": checkpoint_name, "modalities": [name for name, _ in members],
                                  "weights": weights, "folds": len(folds)}
    summary.update(_fold_means(per_fold, len(members)))
    runfolder.write_json_atomic(run_dir / f"{benchmark}_modalities.json", summary)
    return summary
