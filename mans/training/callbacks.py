"""The callbacks of a training run: dropout reseeding, a resumable ReduceLROnPlateau, the run's checkpoints.

Resuming reproduces an uninterrupted run exactly on the CPU: the epoch's sample order is
`default_rng((seed, epoch))` (`mans.training.data.SkeletonBatches`), the dropout seeds are reset from (seed, epoch)
at every epoch start (Keras does not save `SeedGenerator` states in `.keras` files), and the optimizer
(its iterations, momenta and learning rate) and the callbacks' counters come back from `last.keras`.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pathlib
import sys
import time
from collections.abc import Mapping

import keras
import numpy as np

from mans.training.checkpoints import save_checkpoint
from mans.training.runfolder import write_json_atomic

KILL_AFTER_EPOCH_ENV = "MANS_TEST_KILL_AFTER_EPOCH"  # tests only: hard exit after that many epochs


def reseed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Set every SeedGenerator state of `model` from (seed, epoch, its index).

    Keras saves no SeedGenerator state in `.keras` files, so a resumed run would otherwise draw other
    dropout masks than an uninterrupted one.
    """
    states = [v for v in model.variables if v.name == "seed_generator_state"]
    for index, variable in enumerate(states):
        value = int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])  # < 2**32
        if np.iinfo(variable.dtype).max < value:  # PyTorch keeps the state in int32, TensorFlow and JAX in uint32
            value %= np.iinfo(variable.dtype).max + 1
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
        copies = [self.out / "best.keras"] if improved else []
        save_checkpoint(self.model, self.out / "last.keras", self.state, copies=copies)
        write_json_atomic(self.out / "state.json", self.state)
        kill_after = os.environ.get(KILL_AFTER_EPOCH_ENV)
        if kill_after and int(kill_after) == epoch + 1:
            os._exit(137)  # tests: die like `kill -9` right after the epoch was saved


def tensorboard_callbacks(out: pathlib.Path) -> list[keras.callbacks.Callback]:
    """The TensorBoard callback where TensorFlow and TensorBoard are installed (it writes with tf.summary)."""
    missing = [name for name in ("tensorflow", "tensorboard") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"note: {' and '.join(missing)} not installed; no TensorBoard logs are written", file=sys.stderr)
        return []
    return [keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False, profile_batch=0)]
