"""Evaluate MANs checkpoints: test-split metrics and reports, raw-recording prediction.

`evaluate` writes, into the checkpoint's folder or `out`:
    metrics.json             top1, top5, mean_class_accuracy (fractions), checkpoint, data, benchmark, ...
    per_class_accuracy.csv   class, name, support, correct, accuracy
    confusion_matrix.csv     counts, rows = true class, columns = predicted class
    confusion_matrix.png     rows normalised, class names on both axes
    scores.npy               (N, classes) float32 softmax scores, rows in sample-name order
    scores_names.txt         the N sample names, one a line, in the rows' order
    misclassified.csv        name, label, predicted, their names and scores
`mans.evaluation.fusion` fuses such score files (an ensemble of runs or of seeds).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import functools
import json
import os
import pathlib
import sys
import zipfile
from collections.abc import Sequence

import keras
import numpy as np

from mans import formats
from mans.network.batchnorm import BN_SAMPLES, bn_rows, recompute_bn_statistics
from mans.preprocessing import datasets, preprocess, storage
from mans.preprocessing import splits as splits_lib
from mans.training import data as data_lib
from mans.training import runfolder
from mans.training.data import UsageError

REPORT_FILES = runfolder.REPORT_FILES
TTA_CHOICES = ("none", "mirror")  # test-time views: the image as it is, or its left-right mirror image
PREDICT_CHUNK = 32  # raw recordings per forward pass of a Predictor (ours: bounds the memory at S = 224)


def load_checkpoint(path: str | os.PathLike) -> keras.Model:
    """Load a `.keras` checkpoint (MANs layers registered); UsageError for anything else."""
    import mans.network.model  # noqa: F401  (registers the TARM layer for deserialisation)

    path = pathlib.Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path}: no such file")
    if not zipfile.is_zipfile(path) or not {"config.json", "model.weights.h5"} <= set(zipfile.ZipFile(path).namelist()):
        raise UsageError(
            f"{path}: expected a Keras checkpoint (.keras zip with config.json and weights), found another file"
        )
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 (any loading failure is reported as one line)
        reason = f"{type(error).__name__}: {_cause(error)}"
        raise UsageError(f"{path}: could not load the Keras checkpoint ({reason})") from None


def _cause(error: Exception) -> str:
    """The innermost reason Keras gives (its deserialisation errors nest "Exception encountered: ..." lines)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    causes = [line.removeprefix("Exception encountered:").strip() for line in lines
              if line.startswith("Exception encountered:")]
    return causes[-1] if causes else (lines[0] if lines else "")


def run_record(checkpoint: str | os.PathLike) -> dict | None:
    """The training run record (config.json) beside a checkpoint, or None."""
    path = pathlib.Path(checkpoint).parent / "config.json"
    if not path.is_file():
        return None
    record = runfolder.read_json(path)
    return record if "config" in record and "data_attrs" in record else None


def trained_tta(checkpoint: str | os.PathLike) -> str:
    """The test-time augmentation a checkpoint is scored with by default: "mirror" where its run trained on
    left-right mirror images (UT-Kinect's and MSR Action3D's defaults; leave-one-subject-out 89.7 -> 91.3 %,
    bench/RESULTS.md), "none" otherwise (NTU keeps the paper's protocol) and without a run record."""
    record = run_record(checkpoint)
    config = record["config"] if record else {}
    return "mirror" if config.get("augment") and float(config.get("mirror") or 0) > 0 else "none"


def check_model_fits(model: keras.Model, data: data_lib.DataFile, checkpoint: str | os.PathLike) -> None:
    """UsageError when the model's input size or class count differs from the data's."""
    shape = tuple(model.input_shape[1:])
    if shape != (data.size, data.size, 3):
        raise UsageError(
            f"{checkpoint} expects inputs of shape {shape}, but {data.path} holds {data.size} x {data.size} x 3 images"
        )
    classes = int(model.output_shape[-1])
    if classes != data.num_classes:
        raise UsageError(f"{checkpoint} predicts {classes} classes, but {data.path} has {data.num_classes}")


def predict_scores(
    model: keras.Model,
    data: data_lib.DataFile,
    rows: np.ndarray,
    batch_size: int = 256,
    in_memory: str = "auto",
    tta: str = "none",
) -> np.ndarray:
    """Softmax scores (len(rows), classes) float32 of the rows, in row order.

    tta "mirror" scores the left-right mirror images of the rows instead (`mirror_images`); TTA_CHOICES.
    """
    if tta not in TTA_CHOICES:
        raise UsageError(f"tta must be one of {', '.join(TTA_CHOICES)}. Received: tta={tta!r}")
    if tta == "mirror":
        columns = preprocess.mirror_columns(datasets.get_dataset(data.dataset).layout, data.size)
        x = mirror_images(data_lib.load_rows(data.path, rows), columns)
    elif data_lib.should_load_in_memory(in_memory, data_lib.split_bytes(data.path, rows)):
        x = data_lib.load_split(data.path, rows)
    else:
        x = None
    batches = data_lib.SkeletonBatches(data.path, rows, data.labels, batch_size, x=x)
    try:
        return np.asarray(model.predict(batches, verbose=0), dtype=np.float32)
    finally:
        batches.close()


def mirror_images(images: np.ndarray, columns: list[int]) -> np.ndarray:
    """(n, S, S, 3) images mirrored left-right as `mans.network.augment.RandomMirror` does: x negated, each joint
    column swapped with its twin `columns[k]`."""
    return np.asarray(images)[:, :, columns, :] * np.asarray([-1.0, 1.0, 1.0], np.float32)


def summarize(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Top-1 / top-5 / mean per-class accuracy of scores (N, C) against labels (N,).

    Top-1 is `mean(argmax(scores) == labels)`; top-5 counts a sample when its label is among the five
    highest scores (ties broken by the lower class index, as argsort's stable order). Mean per-class
    accuracy averages the recall of the classes that occur in `labels`.
    """
    from sklearn.metrics import confusion_matrix

    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.argmax(scores, axis=1)
    k = min(5, num_classes)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    matrix = confusion_matrix(labels, predicted, labels=np.arange(num_classes))
    support = matrix.sum(1)
    correct = np.diag(matrix)
    present = support > 0
    return {
        "top1": float(np.mean(predicted == labels)),
        "top5": float(np.mean((top == labels[:, None]).any(1))),
        "mean_class_accuracy": float(np.mean(correct[present] / support[present])),
        "predicted": predicted,
        "confusion": matrix,
        "support": support,
        "correct": correct,
    }


def _write_csv(path: pathlib.Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: pathlib.Path, title: str) -> None:
    """Save the row-normalised confusion matrix as a PNG with class names on both axes.

    Only classes that occur (as label or prediction) are drawn; values are printed in the cells when
    at most 20 classes are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = np.flatnonzero((matrix.sum(0) + matrix.sum(1)) > 0)
    sub = matrix[np.ix_(shown, shown)].astype(np.float64)
    rows = sub.sum(1, keepdims=True)
    normalised = np.divide(sub, rows, out=np.zeros_like(sub), where=rows > 0)
    names = [f"{i + 1} {class_names[i]}"[:32] for i in shown]
    k = len(shown)
    side = min(max(6.0, 0.28 * k + 3.0), 40.0)
    fontsize = 8 if k <= 20 else max(3.0, 8 - k / 20)
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k), names, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(k), names, fontsize=fontsize)
    ax.set_xlabel("predicted action")
    ax.set_ylabel("true action")
    ax.set_title(title)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                value = normalised[i, j]
                if value > 0:
                    color = "white" if value > 0.5 else "black"
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize - 1, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_reports(
    out: pathlib.Path,
    scores: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    class_names: Sequence[str],
    metrics: dict,
) -> dict:
    """Write metrics.json and the per-class, confusion, score and misclassified files; returns metrics."""
    out.mkdir(parents=True, exist_ok=True)
    num_classes = scores.shape[1]
    summary = summarize(scores, labels, num_classes)
    metrics = {
        "top1": summary["top1"],
        "top5": summary["top5"],
        "mean_class_accuracy": summary["mean_class_accuracy"],
        **metrics,
        "num_samples": int(len(labels)),
        "num_classes": int(num_classes),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    runfolder.write_json_atomic(out / "metrics.json", metrics)
    support, correct = summary["support"], summary["correct"]
    _write_csv(
        out / "per_class_accuracy.csv",
        ("class", "name", "support", "correct", "accuracy"),
        [
            (
                c,
                class_names[c],
                int(support[c]),
                int(correct[c]),
                f"{correct[c] / support[c]:.6f}" if support[c] else "",
            )
            for c in range(num_classes)
        ],
    )
    matrix = summary["confusion"]
    _write_csv(
        out / "confusion_matrix.csv",
        ("true \\ predicted", *class_names[:num_classes]),
        [(class_names[c], *matrix[c].tolist()) for c in range(num_classes)],
    )
    source = pathlib.Path(str(metrics.get("checkpoint", "ensemble"))).name
    title = f"{source}, {metrics.get('benchmark', '')} {metrics.get('split', '')}: top-1 {summary['top1']:.1%}"
    plot_confusion(matrix, class_names, out / "confusion_matrix.png", title)
    np.save(out / "scores.npy", scores.astype(np.float32))
    (out / "scores_names.txt").write_text("".join(f"{n}\n" for n in names))
    predicted = summary["predicted"]
    wrong = np.flatnonzero(predicted != labels)
    _write_csv(
        out / "misclassified.csv",
        ("name", "label", "label_name", "predicted", "predicted_name", "score_predicted", "score_label"),
        [
            (
                names[i],
                int(labels[i]),
                class_names[labels[i]],
                int(predicted[i]),
                class_names[predicted[i]],
                f"{scores[i, predicted[i]]:.6f}",
                f"{scores[i, labels[i]]:.6f}",
            )
            for i in wrong
        ],
    )
    return metrics


def open_data_file(path: str | os.PathLike) -> data_lib.DataFile:
    """The data file, or UsageError naming it."""
    try:
        return data_lib.open_data(path)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None


def test_rows(data: data_lib.DataFile, benchmark: str) -> data_lib.Splits:
    """The splits of `benchmark` without a hold-out; UsageError for a benchmark the dataset lacks."""
    from mans.preprocessing import datasets

    benchmarks = datasets.get_dataset(data.dataset).benchmarks
    if benchmark not in benchmarks:
        raise UsageError(f"benchmark {benchmark!r} is not one of {data.dataset}'s: {', '.join(benchmarks)}")
    try:
        return data_lib.select_splits(data, benchmark, val="none")
    except ValueError as error:
        raise UsageError(str(error)) from None


def _bn_rows(checkpoint: pathlib.Path, data: data_lib.DataFile, benchmark: str, default: np.ndarray) -> np.ndarray:
    """The rows a run was fitted on (from its config.json when it used this data), else `default`."""
    record = run_record(checkpoint)
    if record is None:
        return default
    config = record["config"]
    if pathlib.Path(config["data"]).resolve() != data.path.resolve() or config["benchmark"] != benchmark:
        return default
    return data_lib.select_splits(
        data,
        benchmark,
        val=config["val"],
        val_fraction=config["val_fraction"],
        seed=config["seed"],
        max_train_samples=config["max_train_samples"],
    ).fit


def _note_mode_mismatch(checkpoint: pathlib.Path, data: data_lib.DataFile) -> None:
    """Warn (stderr) when the run record says the checkpoint was trained on other preprocessing."""
    record = run_record(checkpoint)
    trained = record["data_attrs"].get("mode") if record else None
    if trained is not None and trained != data.attrs.get("mode"):
        print(
            f"note: {checkpoint} was trained on {trained} data, {data.path} is {data.attrs.get('mode')}",
            file=sys.stderr,
        )


def evaluate(
    checkpoint: str | os.PathLike,
    data_path: str | os.PathLike,
    benchmark: str,
    out: str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    in_memory: str = "auto",
    recompute_bn_stats: bool = False,
    bn_samples: int = BN_SAMPLES,
    tta: str | None = None,
) -> dict:
    """Evaluate a checkpoint on the test split of `benchmark` and write the reports.

    Args:
        checkpoint: a `.keras` file from train_MANs.py.
        data_path: the HDF5 file from process_data.py.
        benchmark: e.g. "xsub".
        out: folder for the reports; None: the checkpoint's folder.
        batch_size: images per forward pass.
        in_memory: "auto", "yes" or "no": load the test split into memory first.
        recompute_bn_stats: first replace the BatchNormalization moving statistics by their values on
            (at most `bn_samples` of) the run's training samples; the adjusted model is saved as
            `<checkpoint stem>_bnstats.keras` in `out`.
        bn_samples: cap on the training samples used for that.
        tta: "mirror" averages the scores of each image and of its left-right mirror image (test-time
            augmentation); "none" scores the image alone; None: `trained_tta` (mirror where the run trained
            on mirror images).

    Returns:
        The metrics dict written to metrics.json.
    """
    checkpoint = pathlib.Path(checkpoint)
    data = open_data_file(data_path)
    splits = test_rows(data, benchmark)
    model = load_checkpoint(checkpoint)
    check_model_fits(model, data, checkpoint)
    out = checkpoint.parent if out is None else pathlib.Path(out)
    tta = tta or trained_tta(checkpoint)
    _note_mode_mismatch(checkpoint, data)
    settings = preprocess.Preprocessing.from_attrs(data.attrs)
    extra: dict[str, object] = {"data_mode": data.attrs.get("mode"), "bn_statistics": "as saved",
                                "data_preprocessing": settings.attrs()}
    if recompute_bn_stats:
        rows = _bn_rows(checkpoint, data, benchmark, splits.fit)
        rows = bn_rows(rows, bn_samples)
        count = recompute_bn_statistics(model, data_lib.load_rows(data.path, rows), batch_size)
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / f"{checkpoint.stem}_bnstats.keras")
        extra["bn_statistics"] = f"recomputed for {count} layers on {len(rows)} training samples"
    scores = predict_scores(model, data, splits.test, batch_size, in_memory, tta)
    if tta == "mirror":
        scores = (scores + predict_scores(model, data, splits.test, batch_size, in_memory)) / 2
    extra["tta"] = tta
    labels = data.labels[splits.test]
    names = data.names[splits.test].tolist()
    metrics = {
        "checkpoint": str(checkpoint.resolve()),
        "data": str(data.path.resolve()),
        "benchmark": benchmark,
        "split": "test",
        **extra,
    }
    return write_reports(out, scores, labels, names, data.class_names, metrics)


def dataset_or_none(data_path: str | os.PathLike) -> str | None:
    """The data's dataset name (its folds: a description's leave-one-out values), or None where the file cannot
    be read (reported once the checkpoints are found)."""
    try:
        return data_lib.open_data(data_path).dataset
    except (ValueError, FileNotFoundError):
        return None


def first_missing(paths: Sequence[pathlib.Path]) -> str | None:
    """None when every file exists, else the first missing one and how many more are missing."""
    missing = [str(path) for path in paths if not path.is_file()]
    if not missing:
        return None
    return f"{missing[0]}{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}"


def evaluate_folds(
    run_dir: str | os.PathLike,
    data_path: str | os.PathLike,
    benchmark: str,
    checkpoint_name: str = "best.keras",
    **options: object,
) -> dict:
    """Evaluate every fold of a multi-fold benchmark ("loso") trained by train_MANs.py into `run_dir`.

    Fold K's checkpoint is `run_dir/<fold>/<checkpoint_name>`; its reports go to `run_dir/<fold>/`.
    Writes `run_dir/<benchmark>_metrics.json`: the mean and standard deviation over the folds of top1, top5
    and mean_class_accuracy, and each fold's metrics. `options`: as for `evaluate`.
    """
    run_dir = pathlib.Path(run_dir)
    folds = splits_lib.folds(benchmark, dataset_or_none(data_path))
    checkpoints = [run_dir / fold / checkpoint_name for fold in folds]
    missing = first_missing(checkpoints)
    if missing:
        raise UsageError(
            f"expected one checkpoint per {benchmark} fold in {run_dir}, found none at {missing} (train them with "
            f"train_MANs.py --benchmark {benchmark} --out {run_dir})"
        )
    per_fold = {fold: evaluate(path, data_path, fold, **options) for fold, path in zip(folds, checkpoints, strict=True)}
    summary: dict[str, object] = {"benchmark": benchmark, "data": str(pathlib.Path(data_path).resolve()),
                                  "checkpoint": checkpoint_name, "folds": len(folds)}
    for key in ("top1", "top5", "mean_class_accuracy"):
        values = np.array([metrics[key] for metrics in per_fold.values()])
        summary[key], summary[f"{key}_std"] = float(values.mean()), float(values.std())
    summary["num_samples"] = sum(int(metrics["num_samples"]) for metrics in per_fold.values())
    summary["per_fold"] = per_fold
    runfolder.write_json_atomic(run_dir / f"{benchmark}_metrics.json", summary)
    return summary


def _preprocess_settings(checkpoint: pathlib.Path, data_path: str | os.PathLike | None) -> dict:
    """The attrs of the checkpoint's training data: its preprocessing, size and class names among them."""
    record = run_record(checkpoint)
    if record is not None:
        return record["data_attrs"]
    if data_path is not None:
        return dict(open_data_file(data_path).attrs)
    raise UsageError(
        f"{checkpoint}: no run record (config.json) beside it; pass --data with the HDF5 file it was trained on"
    )


@dataclasses.dataclass
class Predictor:
    """A checkpoint together with the preprocessing of its training data: raw recordings in, scores out.

    `load_predictor` makes one from the run record beside the checkpoint (or an HDF5 file's attributes).
    Reading and preprocessing need no model: the checkpoint is loaded on first use of `model`.
    """

    checkpoint: pathlib.Path
    dataset: str
    preprocessing: preprocess.Preprocessing  # of the training data (files that predate a choice: the demo's)
    size: int
    class_names: list[str]
    recording_format: formats.RawFormat
    jit_compile: bool = False

    @functools.cached_property
    def model(self) -> keras.Model:
        """The checkpoint, loaded and checked against its data settings, its predict function compiled."""
        model = load_checkpoint(self.checkpoint)
        if tuple(model.input_shape[1:]) != (self.size, self.size, 3):
            raise UsageError(
                f"{self.checkpoint} expects inputs {tuple(model.input_shape[1:])}, but its data had size {self.size}"
            )
        if int(model.output_shape[-1]) != len(self.class_names):
            raise UsageError(
                f"{self.checkpoint} predicts {model.output_shape[-1]} classes, but its data names "
                f"{len(self.class_names)}"
            )
        model.compile(jit_compile=self.jit_compile and keras.backend.backend() in ("tensorflow", "jax"))
        return model

    @property
    def layout(self) -> preprocess.JointLayout:
        return self.recording_format.layout

    @property
    def has_tarm(self) -> bool:
        return TARM_LAYERS[0] in {layer.name for layer in self.model.layers}

    def read(self, file: str | os.PathLike) -> list[formats.Recording]:
        """The recordings of a raw file in the checkpoint's format; UsageError naming the file."""
        fmt = self.recording_format
        if not fmt.matches(pathlib.Path(file)):
            raise UsageError(
                f"{file}: {self.checkpoint} was trained on {self.dataset} data and reads {fmt.describes}, "
                "not this file"
            )
        try:
            return fmt.recordings(file)
        except FileNotFoundError:
            raise UsageError(f"{file}: no such file") from None
        except ValueError as error:
            message = str(error)
            raise UsageError(message if str(file) in message else f"{file}: {message}") from None

    def rows(self, skel, source: str = "") -> np.ndarray:
        """(T, columns, 3) rows of a recording before the fixed length; UsageError naming `source`."""
        try:
            return preprocess.normalised_rows(skel, self.preprocessing, self.layout)
        except ValueError as error:
            raise UsageError(f"{source or 'recording'}: {error}") from None

    def image(self, skel, source: str = "") -> np.ndarray:
        """The (S, S, 3) image of a recording, exactly as the training data was made (its modality included)."""
        return self.image_of_rows(skel, self.rows(skel, source))

    def image_of_rows(self, skel, rows: np.ndarray) -> np.ndarray:
        """The model's image of a recording's `rows` (from `rows`): the modality's rows fixed to S."""
        return preprocess.model_image(skel, rows, self.preprocessing, self.size, self.layout)

    def scores(self, images: np.ndarray) -> np.ndarray:
        """Softmax scores (n, classes) float32 of (n, S, S, 3) images, through the compiled predict function
        (`predict_on_batch`: an eager call of the model takes about 100 times longer on the CPU)."""
        images = np.asarray(images, np.float32)
        chunks = [images[i : i + PREDICT_CHUNK] for i in range(0, len(images), PREDICT_CHUNK)]
        return np.concatenate([np.asarray(self.model.predict_on_batch(c), np.float32) for c in chunks])

    def top(self, row: np.ndarray, k: int) -> list[tuple[int, str, float]]:
        """The k best classes of one score row as (class index, name, probability), best first."""
        best = np.argsort(-row, kind="stable")[: min(k, len(row))]
        return [(int(i), str(self.class_names[i]), float(row[i])) for i in best]


TARM_LAYERS = ("tarm_x", "tarm_y", "tarm_z")  # mans.network.model's names for the three TARMs


def load_predictor(
    checkpoint: str | os.PathLike, data_path: str | os.PathLike | None = None, *, jit_compile: bool = False
) -> Predictor:
    """A `Predictor` for raw recordings of the checkpoint's dataset.

    The dataset, its preprocessing, size and class names come from the run record beside the checkpoint, or from
    `data_path`'s attributes. `jit_compile`: compile the predict function with XLA where the backend has it
    (TensorFlow, JAX); worth it for many calls of one batch shape (measured: bench/bench_stream.py).
    """
    checkpoint = pathlib.Path(checkpoint)
    if not checkpoint.is_file():
        raise UsageError(f"checkpoint {checkpoint}: no such file")
    attrs = _preprocess_settings(checkpoint, data_path)
    dataset = str(attrs.get("dataset"))
    try:
        fmt, preprocessing = formats.format_for_attrs(attrs), preprocess.Preprocessing.from_attrs(attrs)
    except ValueError as error:
        raise UsageError(f"{checkpoint}: {error}") from None
    class_names = attrs["class_names"]
    if isinstance(class_names, str):
        class_names = json.loads(class_names)
    return Predictor(checkpoint, dataset, preprocessing, int(attrs["size"]), list(class_names), fmt, jit_compile)


def _modality_predictors(run_dir: str | os.PathLike, data_path: str | os.PathLike | None) -> list[Predictor]:
    """One `Predictor` per modality of a multi-modality run folder (its members' best.keras); [] for anything else."""
    if not pathlib.Path(run_dir).is_dir():
        return []
    try:
        return [load_predictor(folder / "best.keras", storage.modality_file(data_path, name) if data_path else None)
                for name, folder in runfolder.modality_folders(run_dir)]
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None


def _labelled_recordings(
    predictor: Predictor, files: Sequence[str | os.PathLike]
) -> list[tuple[str, str, formats.Skeleton]]:
    """Each recording of `files` as (label: "file", or "file: name" for a file of several; file; skeleton)."""
    labelled = []
    for file in files:
        held = predictor.read(file)
        labelled += [(str(file) if len(held) == 1 else f"{file}: {r.name}", str(file), r.skeleton) for r in held]
    return labelled


def predict_files(
    checkpoint: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    data_path: str | os.PathLike | None = None,
    top: int = 5,
) -> list[tuple[str, list[tuple[str, float]]]]:
    """Top actions of raw recordings (`.skeleton`, or the checkpoint's format), preprocessed exactly like the
    checkpoint's training data.

    The mode and size come from the run record beside the checkpoint (or from `data_path`'s attributes).
    `checkpoint` may also be the folder of a run of several modalities (train_MANs.py --modalities): each
    modality's best.keras makes its own image of each recording, and their probabilities are averaged.

    Returns:
        For each recording, (file, [(action name, probability), ...]) best first; a file holding several
        recordings (a UT-Kinect joints file in its dataset folder) gives "file: name" for each.
    """
    predictors = _modality_predictors(checkpoint, data_path) or [load_predictor(checkpoint, data_path)]
    labelled = _labelled_recordings(predictors[0], files)  # read once; each modality makes its own image
    labels = [label for label, _, _ in labelled]
    scores = np.mean([p.scores(np.stack([p.image(skeleton, file) for _, file, skeleton in labelled]))
                      for p in predictors], axis=0)
    predictor = predictors[0]
    return [
        (label, [(name, probability) for _, name, probability in predictor.top(row, top)])
        for label, row in zip(labels, scores, strict=True)
    ]
