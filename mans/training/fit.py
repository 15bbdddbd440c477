"""Train MANs on a benchmark split of an HDF5 file: `train` / `train_one` check the request, then fit.

The parts live in their own modules of `mans.training`: `train_config` (settings), `runfolder` (the run folder and
its records), `checkpoints` (checkpoints and resume state), `callbacks` (what runs at each epoch),
`distribution` (devices, mixed precision, data parallelism).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from mans.network import batchnorm, regularise
from mans.network import model as model_lib
from mans.preprocessing import datasets, preprocess, storage
from mans.preprocessing import splits as splits_lib
from mans.training import callbacks as callbacks_lib
from mans.training import checkpoints, distribution, runfolder, train_config
from mans.training import data as data_lib
from mans.training.data import UsageError
from mans.training.train_config import TrainConfig


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the run stopped without saving that epoch."""


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


def _require_data_and_out(flags: Mapping[str, object]) -> None:
    if not flags.get("data") or not flags.get("out"):
        raise UsageError("both data and out are required")


def _plan(flags: Mapping[str, object], argv: Sequence[str] | None) -> _Plan:
    """Check everything the user asked for, without writing anything."""
    _require_data_and_out(flags)
    data = _open_or_usage_error(flags["data"])
    spec = datasets.get_dataset(data.dataset)
    config, sources = train_config.resolve_config(flags, spec.train_defaults_of(storage.modality_of(data.attrs)))
    train_config.check_config(config)
    train_config.check_data_fits(data, config, spec.benchmarks)
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
    devices = distribution.local_devices(config.distribute)
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
        "data_attrs": runfolder.jsonable(data.attrs),
        "argv": list(sys.argv if argv is None else argv),
        "versions": runfolder.library_versions(),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    return _Plan(config, sources, data, splits, record, checkpoints.resume_state_for(config, record))


def _compile(model: keras.Model, config: TrainConfig, num_classes: int, steps_per_epoch: int) -> None:
    optimizer = keras.optimizers.SGD(
        learning_rate=train_config.learning_rate(config, steps_per_epoch),
        momentum=config.momentum,
        nesterov=config.nesterov,
        use_ema=config.ema > 0,
        ema_momentum=config.ema or 0.99,
    )
    model.compile(
        optimizer=optimizer,
        loss=regularise.training_loss(config.label_smoothing, dense=config.mixup > 0),
        metrics=regularise.accuracy_metrics(num_classes, dense=config.mixup > 0),
        jit_compile="auto" if config.jit_compile is None else config.jit_compile,
    )


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
        tarm_identity_start=config.tarm_identity_start,
        frozen_attention=config.frozen_attention,
        stcm_residual=config.stcm_residual,
        reset_after=config.reset_after,
        augmentation=train_config.augmentation_strengths(config),
        augmentation_seed=config.seed,
        mirror_columns=preprocess.mirror_columns(datasets.get_dataset(plan.data.dataset).layout, plan.data.size),
    )
    if config.imagenet_weights is not None and plan.resume_state is None:
        try:
            print(model_lib.load_backbone_weights(model, config.imagenet_weights))
        except (ValueError, FileNotFoundError) as error:
            raise UsageError(str(error)) from None
    if config.init_from is not None and plan.resume_state is None:
        copied, skipped = checkpoints.init_weights_from(model, config.init_from)
        fresh = f"; starting afresh: {', '.join(skipped)}" if skipped else ""
        print(f"started from {config.init_from}: {len(copied)} layers copied{fresh}")
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
    if data_lib.should_load_in_memory(config.in_memory, data_lib.split_bytes(plan.data.path, rows)):
        x = data_lib.load_split(plan.data.path, rows)
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
        shard=distribution.process_shard(config.distribute),
        num_classes=plan.data.num_classes if config.mixup > 0 else None,
        mixup=config.mixup if train else 0.0,
        workers=config.workers,
        use_multiprocessing=config.use_multiprocessing,
    )


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
    """Train as `flags` ask; a benchmark of several folds ("loso") trains each fold in `out/<fold>`, and
    `seeds` (a list) trains one run per seed in `out/seed-<seed>` (a seed ensemble).

    Returns one TrainResult, or one per fold and seed. Each run resumes where it stopped when run again.
    """
    flags = dict(flags)
    modalities = flags.pop("modalities", None)
    if modalities is None and flags.get("data"):
        modalities = converted_modalities(flags["data"])
    if modalities:
        return _train_modalities(flags, list(modalities), argv)
    return _train_stream(flags, argv)


def _train_stream(flags: dict, argv: Sequence[str] | None) -> TrainResult | list[TrainResult]:
    """One modality's training: one run, one per fold of a leave-one-out benchmark, or one per seed."""
    seeds = flags.pop("seeds", None)
    if seeds:
        return _train_seeds(flags, list(seeds), argv)
    benchmark = flags.get("benchmark")
    dataset = _open_or_usage_error(flags["data"]).dataset if benchmark and flags.get("data") else None
    folds = splits_lib.folds(str(benchmark), dataset) if benchmark else ()
    if len(folds) <= 1:
        return train_one(flags, argv)
    _require_data_and_out(flags)
    results = []
    for number, fold in enumerate(folds, start=1):
        print(f"== fold {number}/{len(folds)}: {fold}")
        results.append(train_one({**flags, "benchmark": fold, "out": str(pathlib.Path(flags["out"]) / fold)}, argv))
    print(
        f"done: {len(folds)} folds of {benchmark} in {flags['out']}; evaluate them all with "
        f"evaluate.py {flags['out']} --data {flags.get('data')} --benchmark {benchmark}"
    )
    return results


def _open_or_usage_error(path: object) -> data_lib.DataFile:
    try:
        return data_lib.open_data(str(path))
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None


def modality_data(data: str | os.PathLike, modality: str) -> pathlib.Path:
    """The converted file of `modality` that goes with `data` (`storage.modality_file`); UsageError otherwise."""
    try:
        return storage.modality_file(data, modality)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None


def converted_modalities(data: str | os.PathLike) -> list[str] | None:
    """The streams train_MANs.py trains by default (`storage.converted_modalities`); None for no file (the
    single run's checks report it); UsageError for a file that is not process_data.py's."""
    if not pathlib.Path(data).is_file():
        return None
    try:
        return storage.converted_modalities(data)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _train_modalities(flags: dict, modalities: list[str], argv: Sequence[str] | None) -> list[TrainResult]:
    """One MANs per modality, each on its own file (`modality_data`) in `out/<modality>`; evaluate.py fuses them."""
    _require_data_and_out(flags)
    if len(set(modalities)) != len(modalities):
        raise UsageError(f"--modalities must differ from each other. Received: {modalities}")
    files = {modality: modality_data(flags["data"], modality) for modality in modalities}  # all checked first
    results: list[TrainResult] = []
    for number, (modality, path) in enumerate(files.items(), start=1):
        print(f"== modality {modality} ({number}/{len(files)}): {path}")
        result = _train_stream({**flags, "data": str(path), "out": str(pathlib.Path(flags["out"]) / modality)}, argv)
        results.extend(result if isinstance(result, list) else [result])
    print(
        f"done: {len(files)} modalities in {flags['out']}; evaluate each and their fusion with "
        f"evaluate.py {flags['out']} --data {flags['data']} --benchmark {flags.get('benchmark') or 'xsub'}"
    )
    return results


def _train_seeds(flags: dict, seeds: list[int], argv: Sequence[str] | None) -> list[TrainResult]:
    """One run (or one run per fold) per seed, each in its own `seed_folder`."""
    if flags.get("seed") is not None:
        raise UsageError(f"give --seed or --seeds, not both (seed {flags['seed']}, seeds {seeds})")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds must differ from each other. Received: {seeds}")
    _require_data_and_out(flags)
    results: list[TrainResult] = []
    for number, seed in enumerate(seeds, start=1):
        print(f"== seed {seed} ({number}/{len(seeds)})")
        result = train({**flags, "seed": seed, "out": str(runfolder.seed_folder(flags["out"], seed))}, argv)
        results.extend(result if isinstance(result, list) else [result])
    print(
        f"done: {len(seeds)} seeds in {flags['out']}; evaluate each and their fusion with "
        f"evaluate.py {flags['out']} --data {flags.get('data')} --benchmark {flags.get('benchmark') or 'xsub'}"
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
    chief = distribution.is_chief(config.distribute)
    if chief:
        out.mkdir(parents=True, exist_ok=True)
        if plan.resume_state is None:
            runfolder.clear_run_folder(out)
        record = dict(plan.record)
        if plan.resume_state is not None:
            old = runfolder.read_json(out / "config.json")
            record["created"] = old.get("created", record["created"])
            record["resumed"] = [*old.get("resumed", []), plan.record["created"]]
        runfolder.write_json_atomic(out / "config.json", record)
        runfolder.truncate_log(out / "log.csv", int(state["epochs_done"]))
    previous_policy = keras.config.dtype_policy()
    keras.utils.set_random_seed(config.seed)
    keras.config.set_dtype_policy(distribution.precision_policy(config.mixed_precision))
    try:
        with distribution.distribution_scope(config.distribute) as replicas:
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
        reduce_lr = callbacks_lib.ResumableReduceLROnPlateau(
            monitor="val_loss" if val_data is not None else "loss",
            mode="min",
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience,
            cooldown=config.reduce_lr_cooldown,
            min_lr=config.min_lr,
            verbose=1,
            initial_state=state.get("reduce_lr"),
        )
    checkpoint = callbacks_lib.RunCheckpoint(out, monitor, reduce_lr, state, write=chief)
    callbacks = [callbacks_lib.EpochSeeds(config.seed), *([reduce_lr] if reduce_lr is not None else [])]
    if chief:
        callbacks += [
            keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
            *callbacks_lib.tensorboard_callbacks(out),
        ]
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
    if chief and config.ema and state["epochs_done"] >= config.epochs and not state.get("ema_applied"):
        state = save_averaged_weights(plan, model, state, monitor)
    if chief and config.bn_recompute and state["epochs_done"] >= config.epochs:
        state = recompute_checkpoint_bn(plan, model, state)
    return state


def save_averaged_weights(plan: _Plan, model: keras.Model, state: dict, monitor: str) -> dict:
    """--ema: model.fit ended by putting the weights' moving average into the model; save it as last.keras (and
    best.keras, when that is the last epoch), with `ema_applied` in the state."""
    out = pathlib.Path(plan.config.out)
    state = {**state, "ema_applied": True}
    names = ("best.keras", "last.keras") if monitor == "epoch" else ("last.keras",)
    copies = [out / "best.keras"] if monitor == "epoch" else []
    checkpoints.save_checkpoint(model, out / "last.keras", state, copies=copies)
    runfolder.write_json_atomic(out / "state.json", state)
    print(f"the moving average of the weights (momentum {plan.config.ema}) saved in {' and '.join(names)}")
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
    best, last = out / "best.keras", out / "last.keras"
    best_state = checkpoints.read_checkpoint_state(best)
    last_state = checkpoints.read_checkpoint_state(last)
    if last_state is not None and best_state == last_state:  # the same epoch (a run without validation): once
        targets = [(last, last_state, [best])]
    else:
        targets = [(best, best_state, []), (last, last_state, [])]
    for path, saved, copies in targets:
        if saved is None or saved.get("bn_recomputed"):
            continue
        model.load_weights(path)
        batchnorm.recompute_bn_statistics(model, images)
        saved["bn_recomputed"] = len(rows)
        checkpoints.save_checkpoint(model, path, saved, copies=copies)
        if path == last:
            state = saved
    runfolder.write_json_atomic(out / "state.json", state)
    print(f"BatchNormalization statistics recomputed on {len(rows)} training samples in best.keras and last.keras")
    return state
