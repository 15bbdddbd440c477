"""The run folder and its records: config.json, state.json, log.csv, and what a fresh run clears.

A run folder holds
    config.json   every resolved setting and where it came from (flag, dataset default, paper, ours,
                  variant), the data file's attributes, the split sizes, argv, library versions
    last.keras    the model and optimizer after the last finished epoch, with the resume state inside
                  (`mans_state.json` in the zip, see `mans.training.checkpoints`)
    best.keras    the epoch with the best validation accuracy (the demo's ModelCheckpoint)
    state.json    a readable copy of the resume state
    log.csv       one row per epoch (keras CSVLogger, appended on resume)
    tensorboard/  TensorBoard logs (where TensorFlow is installed)
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import platform
import shutil
from collections.abc import Mapping

import keras
import numpy as np

import mans
from mans.training.data import UsageError

RUN_FILES = ("config.json", "best.keras", "last.keras", "state.json", "log.csv", "tensorboard")

# What evaluate.py writes beside a checkpoint (mans.evaluation.score); --overwrite removes these as well.
REPORT_FILES = (
    "metrics.json",
    "per_class_accuracy.csv",
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "scores.npy",
    "scores_names.txt",
    "misclassified.csv",
)

# Settings that may change between an interrupted run and its resumption: they do not change the
# numbers (or, for `epochs`, only extend the run).
RESUME_FREE_KEYS = frozenset({"epochs", "overwrite", "workers", "use_multiprocessing", "in_memory"})


def seed_folder(out: str | os.PathLike, seed: int) -> pathlib.Path:
    """The run folder of one member of a seed ensemble (train_MANs.py --seeds)."""
    return pathlib.Path(out) / f"seed-{seed}"


def seed_of(folder: pathlib.Path) -> int | None:
    """The seed of a `seed_folder`, or None for a folder not named so."""
    number = folder.name.removeprefix("seed-")
    return int(number) if number != folder.name and number.lstrip("-").isdigit() else None


def seed_folders(out: str | os.PathLike) -> list[pathlib.Path]:
    """The members of a seed ensemble in `out`, by seed: its `seed-<number>` folders."""
    found = [p for p in pathlib.Path(out).glob("seed-*") if p.is_dir() and seed_of(p) is not None]
    return sorted(found, key=seed_of)


def modality_folders(out: str | os.PathLike) -> list[tuple[str, pathlib.Path]]:
    """The members of a multi-modality run in `out` (train_MANs.py --modalities): (modality, folder), in the
    order joint, bone, motion."""
    from mans.preprocessing.preprocess import MODALITIES

    return [(name, pathlib.Path(out) / name) for name in MODALITIES if (pathlib.Path(out) / name).is_dir()]


def library_versions() -> dict[str, str]:
    """Versions of Python, Keras, its backend, numpy, h5py and mans."""
    import h5py

    backend = keras.config.backend()
    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": backend,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "mans": mans.__version__,
    }
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    if module:
        versions[module] = importlib.import_module(module).__version__
    return versions


def jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def comparable(record: Mapping) -> dict:
    """The parts of a run record that must agree for a run folder to be resumed."""
    config = {k: v for k, v in record["config"].items() if k not in RESUME_FREE_KEYS}
    return {"config": config, "data_attrs": record["data_attrs"]}


def differences(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return found


def read_json(path: pathlib.Path) -> dict:
    """A JSON file's object; UsageError when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: expected a JSON run record, found an unreadable file ({error})") from None


def write_json_atomic(path: pathlib.Path, obj: object) -> None:
    """Write JSON to `path` through a temporary file and os.replace (never half-written)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(jsonable(obj), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def clear_run_folder(out: pathlib.Path) -> None:
    """Remove what a previous run wrote (only the run's own files)."""
    for name in RUN_FILES + REPORT_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in out.glob(".*.tmp.keras"):
        path.unlink()


def truncate_log(path: pathlib.Path, epochs_done: int) -> None:
    """Drop rows of epochs after `epochs_done` that an interrupted run logged but did not save."""
    if not path.is_file():
        return
    with open(path, newline="") as f:  # keep CSVLogger's line endings as they are
        lines = f.readlines()
    kept = lines[:1] + [line for line in lines[1:] if _logged_epoch(line) < epochs_done]
    if len(kept) != len(lines):
        with open(path, "w", newline="") as f:
            f.writelines(kept)


def _logged_epoch(line: str) -> float:
    """The epoch number (0-based) that starts a log.csv row; infinity for a malformed row."""
    first = line.split(",", 1)[0].strip()
    return int(first) if first.isdigit() else float("inf")
