"""Data-path speed: samples/s of one reading thread, per storage format, beside the model's own training rate.

Converts --files synthetic NTU recordings (frame counts 40-300, 40 + an exponential of mean 60) with
process_data's code at S = 50 and S = 224 (faithful, padded frames), writes the same images as a format 1
file ("mans-hdf5/1", whole gzip-compressed images: what mans stored before), and times, in this thread:
  file     random training batches of --batch-size read from the file (`mans.training.data.SkeletonBatches`)
  load     loading the training split into memory (`mans.training.data.load_split`)
  memory   random training batches from that in-memory copy
Then the model's own training rate (train_on_batch of the resnet variant at 50 and densenet161 at 224, on
this machine), a stand-in model that costs nothing trained with model.fit from the file (the rate of the
training loop when only the data costs time), and the memory NTU-120 needs at S = 224.
Example: python bench/bench_data.py --files 1000
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NTU120_SAMPLES = 114_480 - 535  # docs/paper.md: files, less those without skeletons


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="synthetic recordings")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=8, help="timed batches per measurement")
    parser.add_argument("--model-steps", type=int, default=2, help="timed train_on_batch steps per variant")
    parser.add_argument("--skip-model", action="store_true", help="leave out the model's own training rate")
    parser.add_argument("--folder", help="keep the files here (default: a temporary folder)")
    return parser.parse_args(argv)


def make_files(folder: pathlib.Path, files: int) -> dict[int, tuple[pathlib.Path, pathlib.Path]]:
    """{S: (format 2 file, format 1 file)} of the same synthetic recordings."""
    from bench_preprocess import generate

    from mans.preprocessing import samples, storage

    skeletons = folder / "skeletons"
    if len(list(skeletons.glob("*.skeleton"))) != files:
        generate(skeletons, files, max(1, os.cpu_count() or 1))
    made = {}
    for size in (50, 224):
        new, old = folder / f"new_{size}.h5", folder / f"old_{size}.h5"
        if not new.exists():
            storage.convert_folder(skeletons, new, size=size, workers=os.cpu_count(), progress=False, overwrite=True)
        if not old.exists():
            samples.write_format_1(old, samples.read_images(new), new)
        made[size] = (new, old)
    return made


def rate(function, samples_per_call: int, calls: int) -> float:
    """samples/s of `function(i)` over `calls` calls (after one untimed call)."""
    function(0)
    start = time.perf_counter()
    for i in range(1, calls + 1):
        function(i)
    return samples_per_call * calls / (time.perf_counter() - start)


def data_rates(path: pathlib.Path, batch_size: int, batches: int) -> dict[str, float]:
    from mans.training import data as data_lib

    data = data_lib.open_data(path)
    rows = data_lib.select_splits(data, "xsub", val="none").fit
    stream = data_lib.SkeletonBatches(path, rows, data.labels, batch_size, shuffle_seed=1)
    file_rate = rate(lambda i: stream[i], batch_size, batches)
    stream.close()
    start = time.perf_counter()
    loaded = data_lib.load_split(path, rows)
    load_rate = len(rows) / (time.perf_counter() - start)
    memory = data_lib.SkeletonBatches(path, rows, data.labels, batch_size, shuffle_seed=1, x=loaded)
    memory_rate = rate(lambda i: memory[i], batch_size, batches)
    return {"file": file_rate, "load": load_rate, "memory": memory_rate, "bytes": loaded.nbytes / len(rows)}


def model_rate(variant: str, size: int, batch_size: int, steps: int) -> float:
    """Training samples/s of the real network (train_on_batch on one fixed random batch)."""
    import keras

    from mans.network.model import build_model

    model = build_model(60, variant, size)
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(batch_size, size, size, 3)).astype(np.float32)
    y = np.arange(batch_size) % 60
    return rate(lambda i: model.train_on_batch(x, y), batch_size, steps)


def stand_in_rate(path: pathlib.Path, batch_size: int, batches: int, workers: int) -> float:
    """samples/s of model.fit from the file with a stand-in model that costs (almost) nothing."""
    import keras

    from mans.training import data as data_lib

    data = data_lib.open_data(path)
    rows = data_lib.select_splits(data, "xsub", val="none").fit
    stream = data_lib.SkeletonBatches(path, rows, data.labels, batch_size, shuffle_seed=1, workers=workers)
    inputs = keras.Input((data.size, data.size, 3))
    outputs = keras.layers.Dense(60)(keras.layers.GlobalAveragePooling2D()(inputs[:, :2, :2]))  # reads 12 values
    model = keras.Model(inputs, outputs)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(stream, steps_per_epoch=2, epochs=1, verbose=0)  # compile
    start = time.perf_counter()
    model.fit(stream, steps_per_epoch=batches, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    stream.close()
    return batch_size * batches / seconds


def versions() -> str:
    import h5py
    import keras

    backend = keras.config.backend()
    module = __import__({"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend, "numpy"))
    load = os.getloadavg()[0]
    return (f"python {platform.python_version()}, numpy {np.__version__}, h5py {h5py.__version__} (HDF5 "
            f"{h5py.version.hdf5_version}), keras {keras.__version__}, {backend} {module.__version__}; "
            f"{platform.platform()}; {os.cpu_count()} cores ({platform.processor() or platform.machine()}); "
            f"load average {load:.2f}")


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.path.insert(0, str(REPO / "bench"))
    print(versions())
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        files = make_files(folder, args.files)
        print(f"{args.files} synthetic recordings, converted at 50 and 224 in {time.perf_counter() - start:.0f} s; "
              f"one reading thread, batch {args.batch_size}, samples/s:")
        stored = {}
        for size, (new, old) in files.items():
            for name, path in (("format 2 (rows)", new), ("format 1 (/x)", old)):
                r = data_rates(path, args.batch_size, args.batches)
                print(f"  {size:3d} x {size:<3d} {name:16s} file {r['file']:9,.0f}   load {r['load']:9,.0f}   "
                      f"memory {r['memory']:9,.0f}   ({r['bytes'] / 1e3:6.1f} KB per sample in memory, "
                      f"file {path.stat().st_size / 1e6:.0f} MB)")
                if name.startswith("format 2"):
                    stored[size] = r["bytes"]
        worst = NTU120_SAMPLES * 224 * 50 * 3 * 4
        print(f"NTU-120 at 224 in memory: at most {worst / 1e9:.1f} GB (all {NTU120_SAMPLES:,} samples, every one "
              f"224 rows of 50 joint columns); {NTU120_SAMPLES * stored[224] / 1e9:.1f} GB at this synthetic data's "
              f"{stored[224] / 1e3:.0f} KB per sample; format 1: {NTU120_SAMPLES * 224 * 224 * 12 / 1e9:.1f} GB")
        for workers in (1, 2):
            for size in (50, 224):
                fit = stand_in_rate(files[size][0], args.batch_size, args.batches, workers)
                print(f"stand-in model (costs nothing), model.fit from the file, {workers} worker(s), "
                      f"{size} x {size}: {fit:,.0f} samples/s")
        if not args.skip_model:
            for variant, size, batch in (("resnet", 50, args.batch_size), ("densenet161", 224, 8)):
                print(f"model's own training rate, {variant} at {size} x {size}, batch {batch}: "
                      f"{model_rate(variant, size, batch, args.model_steps):,.1f} samples/s")


if __name__ == "__main__":
    main()
