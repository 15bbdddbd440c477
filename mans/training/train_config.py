"""The settings of a training run: defaults (the authors' demo or ours), precedence, range checks.

`resolve_config` merges a run's flags over its dataset's defaults over the defaults of `TrainConfig`, and
records where each value came from ("flag", "dataset", "paper", "ours", "variant") for config.json.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence

import keras

from mans.network import model as model_lib
from mans.training import data as data_lib
from mans.training.data import UsageError

SCHEDULES = ("plateau", "cosine")


def _paper(default: object) -> dataclasses.Field:
    return dataclasses.field(default=default, metadata={"source": "paper"})


def _ours(default: object) -> dataclasses.Field:
    return dataclasses.field(default=default, metadata={"source": "ours"})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. Defaults: the authors' demo ("paper") or our own ("ours").

    `gru_units`, `dropout` and `recurrent_dropout` left at None take the variant's values
    (`mans.network.model.VARIANT_DEFAULTS`); `jit_compile=None` lets Keras decide ("auto": XLA on a GPU).
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
    tarm_identity_start: bool = _ours(False)  # each TARM starts as the identity (its output Dense at zero)
    frozen_attention: bool = _ours(False)  # the TARM attention Dense layers keep their starting weights (the demo's)
    stcm_residual: bool = _paper(True)
    imagenet_weights: str | None = _ours(None)
    init_from: str | None = _ours(None)  # a .keras checkpoint whose matching layers start the run
    augment: bool = _paper(False)  # the demo trains without augmentation; strengths below apply when on
    rotation: float = _ours(30.0)  # degrees about the body's vertical axis (mans.network.augment)
    scale: float = _ours(0.1)  # relative
    jitter: float = _ours(0.005)  # metres, per joint
    time_warp: float = _ours(0.3)  # 0..1
    mirror: float = _ours(0.0)  # probability of a left-right mirror image
    crop: float = _ours(0.0)  # random temporal crop: the largest share of the recorded span cut away
    label_smoothing: float = _ours(0.0)  # mans.network.regularise
    mixup: float = _ours(0.0)  # Beta(a, a) of mixup between training samples (mans.training.data.mix_pairs); 0: off
    ema: float = _ours(0.0)  # momentum of an exponential moving average of the weights, kept at the end (0: off)
    mixed_precision: str = _ours("off")
    jit_compile: bool | None = _ours(None)
    in_memory: str = _ours("auto")
    workers: int = _ours(1)
    use_multiprocessing: bool = _ours(False)
    distribute: bool = _ours(False)
    steps_per_epoch: int | None = _ours(None)
    max_train_samples: int | None = _ours(None)
    overwrite: bool = _ours(False)


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
    values["init_from"] = _init_from_path(values["init_from"])
    variant = str(values["variant"])
    if variant not in model_lib.VARIANT_DEFAULTS:
        raise UsageError(f"variant must be one of {sorted(model_lib.VARIANT_DEFAULTS)}. Received: {variant!r}")
    for key in ("gru_units", "dropout", "recurrent_dropout"):
        if values[key] is None:
            values[key], sources[key] = model_lib.VARIANT_DEFAULTS[variant][key], "variant"
    return TrainConfig(**values), sources


def _init_from_path(value: object) -> str | None:
    """`init_from` as a path, or None: "none" turns off a default that a dataset's description gives."""
    return None if value is None or str(value).lower() == "none" else str(value)


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
        ("mixup", config.mixup >= 0, ">= 0"),
        ("ema", 0 <= config.ema < 1, "in [0, 1)"),
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
    if config.init_from is not None and not pathlib.Path(config.init_from).is_file():
        raise UsageError(f"init_from: expected a .keras checkpoint, found no file {config.init_from}")


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


def augmentation_strengths(config: TrainConfig) -> dict[str, float] | None:
    """The training-only input transforms of `mans.network.augment`, or None when augmentation is off."""
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
