"""Checkpoints with their resume state inside, and the choice between a fresh run and a resumed one.

`last.keras` and `best.keras` are Keras files with one extra zip member, `mans_state.json`: epochs done,
best so far, ReduceLROnPlateau's counters, wall time. Resuming reproduces an uninterrupted run exactly on
the CPU (see `callbacks` for the dropout seeds and `data.SkeletonBatches` for the sample order).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import zipfile
from collections.abc import Mapping, Sequence

import keras

from mans.training import runfolder
from mans.training.data import UsageError
from mans.training.train_config import TrainConfig

STATE_MEMBER = "mans_state.json"  # the resume state, stored inside last.keras / best.keras


def read_checkpoint_state(path: pathlib.Path) -> dict | None:
    """The resume state stored inside a .keras file, or None when it holds none."""
    try:
        with zipfile.ZipFile(path) as archive:
            if STATE_MEMBER not in archive.namelist():
                return None
            return json.loads(archive.read(STATE_MEMBER))
    except (OSError, zipfile.BadZipFile, ValueError):
        return None


def save_checkpoint(
    model: keras.Model, path: pathlib.Path, state: Mapping[str, object], copies: Sequence[pathlib.Path] = ()
) -> None:
    """Save the model (with optimizer) and `state` to `path` atomically (temporary file, os.replace).

    Each of `copies` receives the same file first, copied rather than saved again (a save of a MANs costs a
    quarter of a second on a CPU core; best.keras is last.keras at every epoch of a run without validation).
    """
    tmp = path.parent / f".{path.stem}.tmp.keras"
    model.save(tmp)
    with zipfile.ZipFile(tmp, "a") as archive:
        archive.writestr(STATE_MEMBER, json.dumps(runfolder.jsonable(state)))
    _fsync(tmp)
    for copy in copies:
        copy_tmp = copy.parent / f".{copy.stem}.tmp.keras"
        shutil.copyfile(tmp, copy_tmp)
        _fsync(copy_tmp)
        os.replace(copy_tmp, copy)
    os.replace(tmp, path)


def _fsync(path: pathlib.Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def init_weights_from(model: keras.Model, path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Copy into `model` the weights of every layer of `path`'s model with the same name and weight shapes.

    For fine-tuning a run of another dataset (`--init-from`): the TARM, the GRUs and the STCM carry over, a
    classifier of another class count starts afresh. Only layers with trainable weights are copied (a
    BatchNormalization layer with its moving statistics), so the augmentation layers keep their own seeds.

    Returns:
        (copied, skipped): the names of the layers copied, and of those with weights that were not.
    """
    try:
        source = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as error:
        raise UsageError(f"{path}: expected a .keras checkpoint to start from, could not load it ({error})") from None
    weights_of = {layer.name: layer.get_weights() for layer in source.layers}
    copied, skipped = [], []
    for layer in model.layers:
        if not layer.trainable_weights:
            continue
        theirs = weights_of.get(layer.name)
        ours = layer.get_weights()
        if theirs is not None and [w.shape for w in theirs] == [w.shape for w in ours]:
            layer.set_weights(theirs)
            copied.append(layer.name)
        else:
            skipped.append(layer.name)
    if not copied:
        raise UsageError(f"{path}: no layer of its model matches this run's model by name and shapes")
    return copied, skipped


def with_later_settings(record: dict) -> dict:
    """The run record with every setting added since it was written at that setting's default (the run was
    trained without it), so that a run folder of an earlier version resumes."""
    defaults = {field.name: runfolder.jsonable(field.default) for field in dataclasses.fields(TrainConfig)
                if field.default is not dataclasses.MISSING}
    config = record.get("config", {})
    return {**record, "config": {**{k: v for k, v in defaults.items() if k not in config}, **config}}


def resume_state_for(config: TrainConfig, record: dict) -> dict | None:
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
    differences = runfolder.differences(
        runfolder.comparable(with_later_settings(runfolder.read_json(config_path))), runfolder.comparable(record)
    )
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
