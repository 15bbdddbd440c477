"""Devices and data-parallel set-up: GPU detection, mixed precision, chief worker, distribution scopes."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator

import keras

from mans.training.data import UsageError


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
def start_jax_processes() -> None:
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

        start_jax_processes()
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
        start_jax_processes()
        distribution = keras.distribution.DataParallel()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(distribution)
        try:
            yield len(distribution.device_mesh.devices.ravel())
        finally:
            keras.distribution.set_distribution(previous)
    else:
        raise UsageError(f"--distribute supports the tensorflow and jax backends, not {backend}")


def process_shard(distribute: bool) -> tuple[int, int]:
    """(process index, process count) of a multi-process JAX run, whose processes feed their own part of
    each global batch; (0, 1) otherwise (TensorFlow's MultiWorkerMirroredStrategy shards by itself)."""
    if distribute and keras.config.backend() == "jax":
        import jax

        return jax.process_index(), jax.process_count()
    return 0, 1
