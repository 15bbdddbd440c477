"""Train MANs on a benchmark split of an HDF5 file: the run folder, resuming, callbacks.

A run folder holds
    config.json   every resolved setting and where it came from (flag, dataset default, paper, ours,
                  variant), the data file's attributes, the split sizes, argv, library versions
    last.keras    the model and optimizer after the last finished epoch, with the resume state inside
                  (`mans_state.json` in the zip: epochs done, best so far, ReduceLROnPlateau's counters)
    best.keras    the epoch with the best validation accuracy (the demo's ModelCheckpoint)
    state.json    a readable copy of the resume state
    log.csv       one row per epoch (keras CSVLogger, appended on resume)
    tensorboard/  TensorBoard logs (where TensorFlow is installed)

Resuming reproduces an uninterrupted run exactly on the CPU: the epoch's sample order is
`default_rng((seed, epoch))` (`mans.data.SkeletonBatches`), the dropout seeds are reset from (seed, epoch)
at every epoch start (Keras does not save `SeedGenerator` states in `.keras` files), and the optimizer
(its iterations, momenta and learning rate) and the callbacks' counters come back from `last.keras`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import importlib
import importlib.util
import json
import math
import os
import pathlib
import platform
import shutil
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence

import keras
import numpy as np

import mans
from mans import batchnorm, datasets, preprocess, regularise
from mans import data as data_lib
from mans import model as model_lib
from mans import splits as splits_lib
from mans.data import UsageError

STATE_MEMBER = "mans_state.json"  # the resume state, stored inside last.keras / best.keras
RUN_FILES = ("config.json", "best.keras", "last.keras", "state.json", "log.csv", "tensorboard")
# What evaluate.py writes beside a checkpoint (mans.evaluation); --overwrite removes these as well.
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
SCHEDULES = ("plateau", "cosine")
KILL_AFTER_EPOCH_ENV = "MANS_TEST_KILL_AFTER_EPOCH"  # tests only: hard exit after that many epochs


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the run stopped without saving that epoch."""


def _paper(default: object) -> dataclasses.Field:
    return dataclasses.field(default=default, metadata={"source": "paper"})


def _ours(default: object) -> dataclasses.Field:
    return dataclasses.field(default=default, metadata={"source": "ours"})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. Defaults: the authors' demo ("paper") or our own ("ours").

    `gru_units`, `dropout` and `recurrent_dropout` left at None take the variant's values
    (`mans.model.VARIANT_DEFAULTS`); `jit_compile=None` lets Keras decide ("auto": XLA on a GPU).
    """

    data: str
    out: str
    benchmark: str = _paper("xsub")
    variant: str = _paper("resnet")  # the demo's 50 x 50 network
    epochs: int = _paper(50)
    batch_size: int = _paper(128)
    lr: float = _paper(0.01)
    momentum: float = _paper(0.9)
    nesterov: bool = _paper(True)
    l2: float = _paper(1e-4)
    seed: int = _paper(1234)  # the demo's numpy seed; here it seeds everything
    val: str = _ours("holdout")  # the demo validated on the test split ("test")
    val_fraction: float = _ours(0.1)
    reduce_lr_factor: float = _paper(0.2)
    reduce_lr_patience: int = _paper(5)
    reduce_lr_cooldown: int = _paper(3)
    min_lr: float = _paper(1e-4)
    schedule: str = _paper("plateau")  # "cosine": cosine decay to min_lr over the run, after warmup_epochs
    warmup_epochs: int = _ours(0)  # linear warm-up from 0 (schedule "cosine" only)
    bn_recompute: bool = _ours(False)  # at the end: BatchNormalization statistics from the training samples
    gru_units: int | None = _paper(None)
    dropout: float | None = _paper(None)
    recurrent_dropout: float | None = _paper(None)
    reset_after: bool = _paper(False)
    use_tarm: bool = _paper(True)
    stcm_residual: bool = _paper(True)
    imagenet_weights: str | None = _ours(None)
    augment: bool = _paper(False)  # the demo trains without augmentation; strengths below apply when on
    rotation: float = _ours(30.0)  # degrees about the body's vertical axis (mans.augment)
    scale: float = _ours(0.1)  # relative
    jitter: float = _ours(0.005)  # metres, per joint
    time_warp: float = _ours(0.3)  # 0..1
    mirror: float = _ours(0.0)  # probability of a left-right mirror image
    crop: float = _ours(0.0)  # random temporal crop: the largest share of the recorded span cut away
    label_smoothing: float = _ours(0.0)  # mans.regularise
    mixed_precision: str = _ours("off")
    jit_compile: bool | None = _ours(None)
    in_memory: str = _ours("auto")
    workers: int = _ours(1)
    use_multiprocessing: bool = _ours(False)
    distribute: bool = _ours(False)
    steps_per_epoch: int | None = _ours(None)
    max_train_samples: int | None = _ours(None)
    overwrite: bool = _ours(False)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a `train` call did: status "trained" or "complete" (nothing left to do)."""

    out: pathlib.Path
    status: str
    epochs_done: int
    best_epoch: int | None
    best_value: float | None
    monitor: str
    wall_time: float
    summary: str


@dataclasses.dataclass(frozen=True)
class _Plan:
    """A checked run: config, its sources, the data, the splits and the record for config.json."""

    config: TrainConfig
    sources: dict[str, str]
    data: data_lib.DataFile
    splits: data_lib.Splits
    record: dict
    resume_state: dict | None


def config_keys() -> tuple[str, ...]:
    """The names of every TrainConfig field."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


def resolve_config(
    flags: Mapping[str, object], dataset_defaults: Mapping[str, object] | None = None
) -> tuple[TrainConfig, dict[str, str]]:
    """Merge given settings, a dataset's defaults and the paper's defaults, in that order of precedence.

    Args:
        flags: settings by TrainConfig field name; None means "not given".
        dataset_defaults: `DatasetSpec.train_defaults`.

    Returns:
        (config, sources): sources maps each field to "flag", "dataset", "paper", "ours" or "variant".
    """
    dataset_defaults = dict(dataset_defaults or {})
    keys = config_keys()
    for where, mapping in (("setting", flags), ("dataset default", dataset_defaults)):
        unknown = sorted(set(mapping) - set(keys))
        if unknown:
            raise UsageError(f"unknown {where} {unknown}; expected keys among {list(keys)}")
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for field in dataclasses.fields(TrainConfig):
        if flags.get(field.name) is not None:
            values[field.name], sources[field.name] = flags[field.name], "flag"
        elif dataset_defaults.get(field.name) is not None:
            values[field.name], sources[field.name] = dataset_defaults[field.name], "dataset"
        elif field.default is dataclasses.MISSING:
            raise UsageError(f"setting {field.name!r} is required")
        else:
            values[field.name], sources[field.name] = field.default, field.metadata["source"]
    variant = str(values["variant"])
    if variant not in model_lib.VARIANT_DEFAULTS:
        raise UsageError(f"variant must be one of {sorted(model_lib.VARIANT_DEFAULTS)}. Received: {variant!r}")
    for key in ("gru_units", "dropout", "recurrent_dropout"):
        if values[key] is None:
            values[key], sources[key] = model_lib.VARIANT_DEFAULTS[variant][key], "variant"
    return TrainConfig(**values), sources


def check_config(config: TrainConfig) -> None:
    """Raise UsageError for a setting out of its range (the message names the setting and the value)."""
    checks = (
        ("epochs", config.epochs >= 1, ">= 1"),
        ("batch_size", config.batch_size >= 1, ">= 1"),
        ("lr", config.lr > 0, "> 0"),
        ("momentum", 0 <= config.momentum < 1, "in [0, 1)"),
        ("l2", config.l2 >= 0, ">= 0"),
        ("val_fraction", 0 < config.val_fraction < 1, "in (0, 1)"),
        ("reduce_lr_factor", 0 < config.reduce_lr_factor < 1, "in (0, 1)"),
        ("reduce_lr_patience", config.reduce_lr_patience >= 0, ">= 0"),
        ("reduce_lr_cooldown", config.reduce_lr_cooldown >= 0, ">= 0"),
        ("min_lr", config.min_lr >= 0, ">= 0"),
        ("warmup_epochs", 0 <= config.warmup_epochs < config.epochs, "in [0, epochs)"),
        ("rotation", 0 <= config.rotation <= 180, "in [0, 180] degrees"),
        ("scale", 0 <= config.scale < 1, "in [0, 1)"),
        ("jitter", config.jitter >= 0, ">= 0"),
        ("time_warp", 0 <= config.time_warp <= 1, "in [0, 1]"),
        ("mirror", 0 <= config.mirror <= 1, "in [0, 1]"),
        ("crop", 0 <= config.crop < 1, "in [0, 1)"),
        ("label_smoothing", 0 <= config.label_smoothing < 1, "in [0, 1)"),
        ("workers", config.workers >= 1, ">= 1"),
        ("steps_per_epoch", config.steps_per_epoch is None or config.steps_per_epoch >= 1, ">= 1"),
        ("max_train_samples", config.max_train_samples is None or config.max_train_samples >= 1, ">= 1"),
    )
    for name, ok, expected in checks:
        if not ok:
            raise UsageError(f"{name} must be {expected}. Received: {name}={getattr(config, name)}")
    for name, value, choices in (
        ("val", config.val, ("holdout", "test", "none")),
        ("in_memory", config.in_memory, ("auto", "yes", "no")),
        ("mixed_precision", config.mixed_precision, ("off", "auto", "bfloat16", "float16")),
        ("schedule", config.schedule, SCHEDULES),
    ):
        if value not in choices:
            raise UsageError(f"{name} must be one of {', '.join(choices)}. Received: {name}={value!r}")
    if config.imagenet_weights is not None and not pathlib.Path(config.imagenet_weights).is_file():
        raise UsageError(f"imagenet_weights: expected an HDF5 weights file, found no file {config.imagenet_weights}")


def check_data_fits(data: data_lib.DataFile, config: TrainConfig, benchmarks: Sequence[str]) -> None:
    """Raise UsageError when the data cannot feed the configured model or benchmark."""
    if config.benchmark not in benchmarks:
        raise UsageError(
            f"benchmark {config.benchmark!r} is not one of {data.dataset}'s: {', '.join(benchmarks)} (data {data.path})"
        )
    expected = int(model_lib.VARIANT_DEFAULTS[config.variant]["size"])
    if data.size != expected:
        raise UsageError(
            f"{data.path} holds {data.size} x {data.size} images, but --variant {config.variant} expects "
            f"{expected} x {expected}; convert the skeletons again with process_data.py --size {expected}"
        )


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


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _comparable(record: Mapping) -> dict:
    """The parts of a run record that must agree for a run folder to be resumed."""
    config = {k: v for k, v in record["config"].items() if k not in RESUME_FREE_KEYS}
    return {"config": config, "data_attrs": record["data_attrs"]}


def _differences(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return found


def read_json(path: pathlib.Path) -> dict:
    """A JSON file's object; UsageError when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: expected a JSON run record, found an unreadable file ({error})") from None


def read_checkpoint_state(path: pathlib.Path) -> dict | None:
    """The resume state stored inside a .keras file, or None when it holds none."""
    try:
        with zipfile.ZipFile(path) as archive:
            if STATE_MEMBER not in archive.namelist():
                return None
            return json.loads(archive.read(STATE_MEMBER))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None


def _plan(flags: Mapping[str, object], argv: Sequence[str] | None) -> _Plan:
    """Check everything the user asked for, without writing anything."""
    if not flags.get("data") or not flags.get("out"):
        raise UsageError("both data and out are required")
    try:
        data = data_lib.open_data(flags["data"])
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    spec = datasets.get_dataset(data.dataset)
    config, sources = resolve_config(flags, spec.train_defaults)
    check_config(config)
    check_data_fits(data, config, spec.benchmarks)
    try:
        splits = data_lib.select_splits(
            data,
            config.benchmark,
            val=config.val,
            val_fraction=config.val_fraction,
            seed=config.seed,
            max_train_samples=config.max_train_samples,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    devices = local_devices(config.distribute)
    if config.batch_size % devices:
        raise UsageError(
            f"--batch-size {config.batch_size} does not split evenly over the {devices} devices of --distribute; "
            f"use a multiple of {devices}"
        )
    config = dataclasses.replace(config, data=str(pathlib.Path(config.data).resolve()))
    validation = {
        "holdout": f"{config.val_fraction:g} of the training performers held out (test split unseen)",
        "test": "the test split (the authors' protocol: the best epoch is chosen on test)",
        "none": "none (best.keras is the last epoch)",
    }[config.val]
    record = {
        "config": dataclasses.asdict(config),
        "sources": sources,
        "validation": validation,
        "splits": {"fit": len(splits.fit), "val": len(splits.val), "test": len(splits.test)},
        "data_attrs": _jsonable(data.attrs),
        "argv": list(sys.argv if argv is None else argv),
        "versions": library_versions(),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return _Plan(config, sources, data, splits, record, _check_run_folder(config, record))


def _check_run_folder(config: TrainConfig, record: dict) -> dict | None:
    """Decide how to use the run folder: None for a fresh run, else the resume state to continue from."""
    out = pathlib.Path(config.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; expected a run folder")
    if not out.exists() or not any(out.iterdir()):
        return None
    config_path = out / "config.json"
    if not config_path.is_file():
        raise UsageError(f"--out {out} exists and is not a run folder (no config.json); choose another --out")
    if config.overwrite:
        return None
    differences = _differences(_comparable(read_json(config_path)), _comparable(record))
    if differences:
        shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
        raise UsageError(f"{out} holds a run with another config ({shown}); choose another --out, or pass --overwrite")
    last = out / "last.keras"
    if not last.is_file():
        return None
    state = read_checkpoint_state(last)
    if state is None:
        raise UsageError(f"{last} holds no resume state; pass --overwrite to start the run again")
    return state


def _clear_run_folder(out: pathlib.Path) -> None:
    """Remove what a previous run wrote (only the run's own files)."""
    for name in RUN_FILES + REPORT_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in out.glob(".*.tmp.keras"):
        path.unlink()


def write_json_atomic(path: pathlib.Path, obj: object) -> None:
    """Write JSON to `path` through a temporary file and os.replace (never half-written)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(_jsonable(obj), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def save_checkpoint(model: keras.Model, path: pathlib.Path, state: Mapping[str, object]) -> None:
    """Save the model (with optimizer) and `state` to `path` atomically (temporary file, os.replace)."""
    tmp = path.parent / f".{path.stem}.tmp.keras"
    model.save(tmp)
    with zipfile.ZipFile(tmp, "a") as archive:
        archive.writestr(STATE_MEMBER, json.dumps(_jsonable(state)))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def reseed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Set every SeedGenerator state of `model` from (seed, epoch, its index).

    Keras saves no SeedGenerator state in `.keras` files, so a resumed run would otherwise draw other
    dropout masks than an uninterrupted one.
    """
    states = [v for v in model.variables if v.name == "seed_generator_state"]
    for index, variable in enumerate(states):
        value = np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0]
        variable.assign(np.array([value, 0], dtype=variable.dtype))


class EpochSeeds(keras.callbacks.Callback):
    """Reseeds the model's dropout at the start of every epoch (see `reseed_dropout`)."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs: Mapping | None = None) -> None:
        reseed_dropout(self.model, self.seed, epoch)


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters (wait, cooldown, best) can be saved and restored."""

    def __init__(self, *args, initial_state: Mapping[str, object] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial_state = dict(initial_state or {})

    def on_train_begin(self, logs: Mapping | None = None) -> None:
        super().on_train_begin(logs)
        if self.initial_state:
            self.wait = int(self.initial_state["wait"])
            self.cooldown_counter = int(self.initial_state["cooldown_counter"])
            best = self.initial_state["best"]
            self.best = None if best is None else float(best)

    def get_state(self) -> dict[str, object]:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "cooldown_counter": int(self.cooldown_counter), "best": best}


class RunCheckpoint(keras.callbacks.Callback):
    """At each epoch end: best.keras when the monitored accuracy improves, then last.keras with the state.

    monitor="epoch" (no validation data) makes every epoch an improvement: best.keras is the last epoch.

    The state counts the epochs done, the best value and epoch, ReduceLROnPlateau's counters, the wall
    time and the seconds of each epoch (the first one includes compilation; after a resume, the first
    resumed epoch includes it again).

    Runs after ReduceLROnPlateau and CSVLogger, so that the saved state includes this epoch.
    Stops the run without saving when the epoch's loss is not finite (`diverged` says when).
    """

    def __init__(
        self,
        out: pathlib.Path,
        monitor: str,
        reduce_lr: ResumableReduceLROnPlateau | None,
        state: Mapping[str, object],
        write: bool = True,
    ):
        super().__init__()
        self.out = out
        self.monitor = monitor
        self.reduce_lr = reduce_lr
        self.state = dict(state)
        self.write = write
        self.started = time.monotonic()
        self.diverged: tuple[int, object] | None = None

    def on_epoch_end(self, epoch: int, logs: Mapping | None = None) -> None:
        logs = dict(logs or {})
        loss = logs.get("loss")
        if loss is None or not math.isfinite(float(loss)):
            self.model.stop_training = True
            self.diverged = (epoch + 1, loss)
            return
        value = float(epoch + 1) if self.monitor == "epoch" else float(logs.get(self.monitor, float("nan")))
        best = self.state.get("best_value")
        improved = math.isfinite(value) and (best is None or value > best)
        now = time.monotonic()
        self.state.update(
            epochs_done=epoch + 1,
            wall_time=float(self.state.get("wall_time", 0.0)) + now - self.started,
            epoch_seconds=[*self.state.get("epoch_seconds", []), now - self.started],
            reduce_lr=None if self.reduce_lr is None else self.reduce_lr.get_state(),
            last_logs={k: float(v) for k, v in logs.items()},
        )
        self.started = now
        if improved:
            self.state.update(best_value=value, best_epoch=epoch + 1)
        if not self.write:
            return
        if improved:
            save_checkpoint(self.model, self.out / "best.keras", self.state)
        save_checkpoint(self.model, self.out / "last.keras", self.state)
        write_json_atomic(self.out / "state.json", self.state)
        kill_after = os.environ.get(KILL_AFTER_EPOCH_ENV)
        if kill_after and int(kill_after) == epoch + 1:
            os._exit(137)  # tests: die like `kill -9` right after the epoch was saved


def is_chief(distribute: bool) -> bool:
    """False on the secondary workers of a multi-worker run, which write nothing to the run folder."""
    if not distribute:
        return True
    if os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0") != "0":
        return False
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def has_gpu() -> bool:
    """Whether the Keras backend sees a GPU."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def precision_policy(mixed_precision: str) -> str:
    """The Keras dtype policy for --mixed-precision: off, auto (float16 on a GPU, else bfloat16), ..."""
    if mixed_precision == "off":
        return "float32"
    if mixed_precision == "auto":
        return "mixed_float16" if has_gpu() else "mixed_bfloat16"
    return f"mixed_{mixed_precision}"


@functools.cache
def _start_jax_processes() -> None:
    """Join a multi-process JAX run (once per process) when KERAS_DISTRIBUTION_NUM_PROCESSES > 1.

    keras.distribution.initialize() reads KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES
    and KERAS_DISTRIBUTION_PROCESS_ID, and must run before JAX lists its devices.
    """
    if int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1")) > 1:
        keras.distribution.initialize()


def local_devices(distribute: bool) -> int:
    """How many devices (of all processes) a data-parallel run splits each batch over; 1 without --distribute."""
    if not distribute:
        return 1
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    if backend == "jax":
        import jax

        _start_jax_processes()
        return jax.device_count()
    raise UsageError(f"--distribute supports the tensorflow and jax backends, not {backend}")


@contextlib.contextmanager
def distribution_scope(distribute: bool) -> Iterator[int]:
    """Data-parallel training over the local accelerators (or logical CPU devices); yields their count.

    TensorFlow: tf.distribute.MirroredStrategy (MultiWorkerMirroredStrategy when TF_CONFIG is set).
    JAX: keras.distribution.DataParallel (keras.distribution.initialize() first when
    KERAS_DISTRIBUTION_NUM_PROCESSES is set). Model building, compiling and loading happen inside.
    """
    if not distribute:
        yield 1
        return
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if os.environ.get("TF_CONFIG"):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        else:
            devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
        with strategy.scope():
            yield strategy.num_replicas_in_sync
    elif backend == "jax":
        _start_jax_processes()
        distribution = keras.distribution.DataParallel()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(distribution)
        try:
            yield len(distribution.device_mesh.devices.ravel())
        finally:
            keras.distribution.set_distribution(previous)
    else:
        raise UsageError(f"--distribute supports the tensorflow and jax backends, not {backend}")


def learning_rate(config: TrainConfig, steps_per_epoch: int) -> float | keras.optimizers.schedules.CosineDecay:
    """The optimizer's learning rate: the constant `lr` that ReduceLROnPlateau lowers ("plateau"), or a
    cosine decay from `lr` to `min_lr` over the run after a linear warm-up from 0 ("cosine")."""
    if config.schedule == "plateau":
        return config.lr
    warmup = config.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.lr,
        decay_steps=max(1, (config.epochs - config.warmup_epochs) * steps_per_epoch),
        alpha=min(1.0, config.min_lr / config.lr),
        warmup_target=config.lr if warmup else None,
        warmup_steps=warmup,
    )


def _compile(model: keras.Model, config: TrainConfig, num_classes: int, steps_per_epoch: int) -> None:
    optimizer = keras.optimizers.SGD(
        learning_rate=learning_rate(config, steps_per_epoch), momentum=config.momentum, nesterov=config.nesterov
    )
    model.compile(
        optimizer=optimizer,
        loss=regularise.training_loss(config.label_smoothing),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5"),
        ],
        jit_compile="auto" if config.jit_compile is None else config.jit_compile,
    )


def augmentation_strengths(config: TrainConfig) -> dict[str, float] | None:
    """The training-only input transforms of `mans.augment`, or None when augmentation is off."""
    if not config.augment:
        return None
    return {
        "rotation": config.rotation,
        "scale": config.scale,
        "jitter": config.jitter,
        "time_warp": config.time_warp,
        "mirror": config.mirror,
        "crop": config.crop,
    }


def _make_model(plan: _Plan, steps_per_epoch: int) -> keras.Model:
    """Build and compile the model; on resume, load weights and optimizer state from last.keras."""
    config = plan.config
    model = model_lib.build_model(
        plan.data.num_classes,
        config.variant,
        plan.data.size,
        gru_units=config.gru_units,
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        l2=config.l2,
        use_tarm=config.use_tarm,
        stcm_residual=config.stcm_residual,
        reset_after=config.reset_after,
        imagenet_weights=config.imagenet_weights,
        augmentation=augmentation_strengths(config),
        augmentation_seed=config.seed,
        mirror_columns=preprocess.mirror_columns(datasets.get_dataset(plan.data.dataset).layout, plan.data.size),
    )
    _compile(model, config, plan.data.num_classes, steps_per_epoch)
    if plan.resume_state is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(pathlib.Path(config.out) / "last.keras")
    return model


def _batches(plan: _Plan, rows: np.ndarray, *, train: bool, epoch: int, replicas: int) -> data_lib.SkeletonBatches:
    """The training stream (shuffled, from `epoch`) or an ordered pass over `rows`.

    Data-parallel runs need batches that split evenly over the devices (JAX refuses others): training
    drops each epoch's last, smaller batch, and validation leaves out the last len(rows) % replicas rows.
    """
    config = plan.config
    if replicas > 1 and not train:
        rows = rows[: len(rows) - len(rows) % replicas]
    x = None
    if data_lib.should_load_in_memory(config.in_memory, len(rows), plan.data.size):
        x = data_lib.load_rows(plan.data.path, rows)
    return data_lib.SkeletonBatches(
        plan.data.path,
        rows,
        plan.data.labels,
        config.batch_size,
        shuffle_seed=config.seed if train else None,
        initial_epoch=epoch,
        max_steps=config.steps_per_epoch if train else None,
        drop_remainder=train and replicas > 1,
        x=x,
        shard=_process_shard(config.distribute),
        workers=config.workers,
        use_multiprocessing=config.use_multiprocessing,
    )


def _process_shard(distribute: bool) -> tuple[int, int]:
    """(process index, process count) of a multi-process JAX run, whose processes feed their own part of
    each global batch; (0, 1) otherwise (TensorFlow's MultiWorkerMirroredStrategy shards by itself)."""
    if distribute and keras.config.backend() == "jax":
        import jax

        return jax.process_index(), jax.process_count()
    return 0, 1


def _truncate_log(path: pathlib.Path, epochs_done: int) -> None:
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


def _tensorboard(out: pathlib.Path) -> list[keras.callbacks.Callback]:
    """The TensorBoard callback where TensorFlow and TensorBoard are installed (it writes with tf.summary)."""
    missing = [name for name in ("tensorflow", "tensorboard") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"note: {' and '.join(missing)} not installed; no TensorBoard logs are written", file=sys.stderr)
        return []
    return [keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False, profile_batch=0)]


def _summary(state: Mapping[str, object], monitor: str, config: TrainConfig, status: str) -> str:
    wall = float(state.get("wall_time", 0.0))
    best = state.get("best_value")
    if monitor == "epoch":
        best_text = "no validation, best.keras is the last epoch"
    elif best is not None:
        best_text = f"best {monitor} {best:.4f} at epoch {state.get('best_epoch')}"
    else:
        best_text = f"no {monitor}"
    verb = "run already complete" if status == "complete" else "done"
    return (
        f"{verb}: {best_text} of {state.get('epochs_done', 0)}/{config.epochs} epochs, "
        f"wall time {datetime.timedelta(seconds=round(wall))}, run folder {config.out}"
    )


def _result(plan: _Plan, state: Mapping[str, object], monitor: str, status: str) -> TrainResult:
    return TrainResult(
        out=pathlib.Path(plan.config.out),
        status=status,
        epochs_done=int(state.get("epochs_done", 0)),
        best_epoch=state.get("best_epoch"),
        best_value=state.get("best_value"),
        monitor=monitor,
        wall_time=float(state.get("wall_time", 0.0)),
        summary=_summary(state, monitor, plan.config, status),
    )


def train(flags: Mapping[str, object], argv: Sequence[str] | None = None) -> TrainResult | list[TrainResult]:
    """Train as `flags` ask; a benchmark of several folds ("loso") trains each fold in `out/<fold>`.

    Returns one TrainResult, or one per fold. Each run resumes where it stopped when run again.
    """
    benchmark = flags.get("benchmark")
    folds = splits_lib.folds(str(benchmark)) if benchmark else ()
    if len(folds) <= 1:
        return train_one(flags, argv)
    if not flags.get("out"):
        raise UsageError("both data and out are required")
    results = []
    for number, fold in enumerate(folds, start=1):
        print(f"== fold {number}/{len(folds)}: {fold}")
        results.append(train_one({**flags, "benchmark": fold, "out": str(pathlib.Path(flags["out"]) / fold)}, argv))
    print(
        f"done: {len(folds)} folds of {benchmark} in {flags['out']}; evaluate them all with "
        f"evaluate.py {flags['out']} --data {flags.get('data')} --benchmark {benchmark}"
    )
    return results


def train_one(flags: Mapping[str, object], argv: Sequence[str] | None = None) -> TrainResult:
    """Train (or resume, or report a finished run) as `flags` ask; prints a one-line summary.

    Args:
        flags: TrainConfig settings by name; None (or absent) means "not given", and the dataset's
            default or the paper's applies. `data` and `out` are required.
        argv: the command line recorded in config.json (default sys.argv).

    Returns:
        TrainResult. Raises UsageError (one line, nothing written) for a mistake in the request.
    """
    plan = _plan(flags, argv)
    config = plan.config
    out = pathlib.Path(config.out)
    monitor = "epoch" if config.val == "none" else "val_accuracy"
    state = dict(plan.resume_state or {"epochs_done": 0, "monitor": monitor})
    if state["epochs_done"] >= config.epochs and not (config.bn_recompute and not state.get("bn_recomputed")):
        result = _result(plan, state, monitor, "complete")
        print(result.summary)
        return result
    chief = is_chief(config.distribute)
    if chief:
        out.mkdir(parents=True, exist_ok=True)
        if plan.resume_state is None:
            _clear_run_folder(out)
        record = dict(plan.record)
        if plan.resume_state is not None:
            old = read_json(out / "config.json")
            record["created"] = old.get("created", record["created"])
            record["resumed"] = [*old.get("resumed", []), plan.record["created"]]
        write_json_atomic(out / "config.json", record)
        _truncate_log(out / "log.csv", int(state["epochs_done"]))
    previous_policy = keras.config.dtype_policy()
    keras.utils.set_random_seed(config.seed)
    keras.config.set_dtype_policy(precision_policy(config.mixed_precision))
    try:
        with distribution_scope(config.distribute) as replicas:
            state = _fit(plan, state, monitor, replicas, chief)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    result = _result(plan, state, monitor, "trained")
    print(result.summary)
    return result


def _fit(plan: _Plan, state: dict, monitor: str, replicas: int, chief: bool) -> dict:
    """Build the model and run model.fit from the saved epoch; returns the final state."""
    config = plan.config
    out = pathlib.Path(config.out)
    initial_epoch = int(state["epochs_done"])
    train_data = _batches(plan, plan.splits.fit, train=True, epoch=initial_epoch, replicas=replicas)
    model = _make_model(plan, train_data.steps_per_epoch)
    val_data = None
    if len(plan.splits.val):
        val_data = _batches(plan, plan.splits.val, train=False, epoch=0, replicas=replicas)
    reduce_lr = None
    if config.schedule == "plateau":
        reduce_lr = ResumableReduceLROnPlateau(
            monitor="val_loss" if val_data is not None else "loss",
            mode="min",
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience,
            cooldown=config.reduce_lr_cooldown,
            min_lr=config.min_lr,
            verbose=1,
            initial_state=state.get("reduce_lr"),
        )
    checkpoint = RunCheckpoint(out, monitor, reduce_lr, state, write=chief)
    callbacks = [EpochSeeds(config.seed), *([reduce_lr] if reduce_lr is not None else [])]
    if chief:
        callbacks += [keras.callbacks.CSVLogger(str(out / "log.csv"), append=True), *_tensorboard(out)]
    callbacks.append(checkpoint)
    parallel = f"data-parallel over {replicas} devices; " if replicas > 1 else ""
    print(
        f"training {config.variant} on {len(plan.splits.fit)} samples "
        f"({train_data.steps_per_epoch} steps per epoch), validating on {len(plan.splits.val)} "
        f"({plan.record['validation']}); {parallel}epochs "
        f"{initial_epoch + 1}-{config.epochs}; run folder {out}",
        flush=True,
    )
    try:
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=train_data.steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    finally:
        train_data.close()
        if val_data is not None:
            val_data.close()
    if checkpoint.diverged is not None:
        epoch, loss = checkpoint.diverged
        raise TrainingDiverged(
            f"the training loss is {loss} in epoch {epoch}; stopped, {out / 'last.keras'} holds epoch "
            f"{epoch - 1} (try a smaller --lr in a new --out)"
        )
    state = checkpoint.state
    if chief and config.bn_recompute and state["epochs_done"] >= config.epochs:
        state = recompute_checkpoint_bn(plan, model, state)
    return state


def recompute_checkpoint_bn(plan: _Plan, model: keras.Model, state: dict) -> dict:
    """--bn-recompute: give best.keras and last.keras the BatchNormalization statistics of the training samples.

    The statistics are computed in inference mode, without augmentation, on at most `batchnorm.BN_SAMPLES` of
    the fit rows; each checkpoint is rewritten atomically with `bn_recomputed` in its state, so a finished run
    run again does nothing more.
    """
    out = pathlib.Path(plan.config.out)
    rows = batchnorm.bn_rows(plan.splits.fit, seed=plan.config.seed)
    images = data_lib.load_rows(plan.data.path, rows)
    for name in ("best.keras", "last.keras"):
        path = out / name
        saved = read_checkpoint_state(path)
        if saved is None or saved.get("bn_recomputed"):
            continue
        model.load_weights(path)
        batchnorm.recompute_bn_statistics(model, images)
        saved["bn_recomputed"] = len(rows)
        save_checkpoint(model, path, saved)
        if name == "last.keras":
            state = saved
    write_json_atomic(out / "state.json", state)
    print(f"BatchNormalization statistics recomputed on {len(rows)} training samples in best.keras and last.keras")
    return state
