"""Training speed of MANs through the real training path: HDF5 file -> mans.training.data batches -> train_MANs' fit.

Default (any machine): makes --samples synthetic recordings with process_data's pipeline, trains the
resnet variant for 2 epochs of --steps batches through `mans.training.fit.train` (no validation) and prints
the samples/s of the second epoch (the first one compiles), next to the device and library versions.
--full (for a GPU machine): tiles those recordings into an NTU-60-sized file (40,000 samples, the
xsub training side ~70 %) and runs the paper's schedule (batch 128, 50 epochs, held-out validation)
through `train`, then prints the wall time; --epochs N runs fewer epochs and extrapolates to 50.
Example: python bench/bench_train.py
         python bench/bench_train.py --full --mixed-precision --epochs 3
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=1200, help="synthetic recordings made by the pipeline")
    p.add_argument("--variant", choices=["resnet", "densenet161"], default="resnet",
                   help="resnet trains on 50 x 50 images, densenet161 on 224 x 224")
    p.add_argument("--batch-size", type=int, default=128, help="the paper's 128")
    p.add_argument("--steps", type=int, default=4, help="batches per timed epoch (default mode)")
    p.add_argument("--full", action="store_true", help="an NTU-60-sized run (40,000 samples, 50 epochs)")
    p.add_argument("--full-samples", type=int, default=40000, help="--full: samples on the xsub training side")
    p.add_argument("--epochs", type=int, default=None, help="--full: epochs actually run (default 50)")
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--workers", type=int, default=1, help="batch-reading threads")
    p.add_argument("--in-memory", choices=["auto", "yes", "no"], default="auto")
    p.add_argument("--workdir", help="folder for the data and runs (default: a temporary folder)")
    return p.parse_args(argv)


def device_description() -> str:
    """The accelerator the Keras backend computes on, else the CPU."""
    from mans.training import distribution

    if distribution.has_gpu():
        import keras

        if keras.config.backend() == "tensorflow":
            import tensorflow as tf

            gpu = tf.config.list_physical_devices("GPU")[0]
            return f"GPU {tf.config.experimental.get_device_details(gpu).get('device_name', gpu.name)}"
        import jax

        return f"GPU {jax.devices()[0].device_kind}"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores visible)"


def synthetic_h5(folder: pathlib.Path, samples: int, size: int = 50) -> pathlib.Path:
    """`samples` synthetic recordings of all 60 actions through the real pipeline (faithful, S = `size`)."""
    from mans.preprocessing import storage, synthetic

    out = folder / f"synthetic{samples}_{size}.h5"
    if not out.exists():
        raw = folder / f"raw{samples}"
        if len(list(raw.glob("*.skeleton"))) != samples:
            synthetic.write_synthetic_dataset(raw, samples, workers=os.cpu_count() or 1)
        storage.convert_folder(raw, out, size=size, workers=os.cpu_count(), progress=False)
    return out


def tiled_h5(base: pathlib.Path, out: pathlib.Path, train_samples: int) -> pathlib.Path:
    """An NTU-60-sized file in the mans HDF5 layout, its sizes in NTU-60's xsub proportions:
    `train_samples` on the training side and 0.411 times as many on the test side (40,091 / 16,487).
    Sample names are distinct (setups 1-17, cameras 1-3, performers 1-40, replications 1-2, actions 1-60);
    each image is that of a base sample of the same action."""
    import h5py
    import numpy as np

    from mans.preprocessing import samples as stored_rows
    from mans.preprocessing import splits, storage

    if out.exists():
        return out
    meta, attrs = storage.read_metadata(base)
    grid = np.stack(np.meshgrid(range(1, 18), range(1, 4), range(1, 41), range(1, 3), range(1, 61)), -1)
    grid = grid.reshape(-1, 5)
    is_train = np.isin(grid[:, 2], list(splits.XSUB_TRAIN_PERFORMERS_60))
    rng = np.random.default_rng(0)
    picked = np.concatenate(
        [
            rng.choice(grid[is_train], train_samples, replace=False),
            rng.choice(grid[~is_train], round(train_samples * 16487 / 40091), replace=False),
        ]
    )
    names = np.array([f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}" for s, c, p, r, a in picked])
    order = np.argsort(names)
    names, picked = names[order], picked[order]
    samples = len(names)
    by_action = {a: np.flatnonzero(meta["label"] == a - 1) for a in range(1, 61)}
    tmp = out.with_suffix(".h5.tmp")
    base_x = stored_rows.read_images(base)
    size = base_x.shape[1]
    writer = stored_rows.RowsWriter(out.with_suffix(".h5.tmp.rows"), size, int(attrs["columns"]))
    with h5py.File(tmp, "w") as f:
        for i, action in enumerate(picked[:, 4]):
            writer.add(*stored_rows.crop_rows(base_x[by_action[action][i % len(by_action[action])]]))
        writer.finish(f)
        for column, index in (("setup", 0), ("camera", 1), ("performer", 2), ("replication", 3)):
            f[column] = picked[:, index].astype(np.int16)
        f["label"] = (picked[:, 4] - 1).astype(np.int16)
        f["frames"] = np.full(samples, 100, np.int32)
        f["name"] = names.astype("S20")
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
        f.attrs["kept"] = samples
        f.attrs["command"] = "bench/bench_train.py (tiled synthetic)"
    os.replace(tmp, out)
    return out


def train(data: pathlib.Path, out: pathlib.Path, args: argparse.Namespace, **settings) -> object:
    from mans.training import fit as training

    flags = {
        "data": str(data),
        "out": str(out),
        "batch_size": args.batch_size,
        "mixed_precision": "auto" if args.mixed_precision else None,
        "jit_compile": args.jit_compile,
        "workers": args.workers,
        "in_memory": args.in_memory,
        "variant": args.variant,
        "overwrite": True,
        **settings,
    }
    return training.train(flags, argv=["bench/bench_train.py"])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    from mans.training import data as data_lib
    from mans.training import runfolder

    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        size = 224 if args.variant == "densenet161" else 50
        base = synthetic_h5(folder, args.samples, size)
        print(f"data: {args.samples} synthetic recordings in {time.perf_counter() - started:.0f} s")
        versions = runfolder.library_versions()
        setting = (f"{args.variant} at {size} x {size}, batch {args.batch_size}, "
                   f"mixed precision {'on' if args.mixed_precision else 'off'}")
        print(f"device: {device_description()}; {', '.join(f'{k} {v}' for k, v in versions.items())}")
        print(f"KERAS_BACKEND={keras.config.backend()}; {setting}")
        if not args.full:
            train(base, folder / "run", args, epochs=2, steps_per_epoch=args.steps, val="none")
            seconds = runfolder.read_json(folder / "run" / "state.json")["epoch_seconds"]
            fit = len(data_lib.select_splits(data_lib.open_data(base), "xsub", val="none").fit)
            samples = min(args.steps * args.batch_size, fit)
            print(
                f"{args.variant} training: {samples / seconds[1]:.1f} samples/s ({samples} samples in "
                f"{seconds[1]:.1f} s; first epoch with compilation {seconds[0]:.1f} s)"
            )
            return
        started = time.perf_counter()
        data = tiled_h5(base, folder / f"ntu60_sized_{args.full_samples}_{size}.h5", args.full_samples)
        print(f"data: {args.full_samples} training-side samples tiled in {time.perf_counter() - started:.0f} s")
        epochs = args.epochs or 50
        result = train(data, folder / "full", args, epochs=epochs)
        seconds = runfolder.read_json(folder / "full" / "state.json")["epoch_seconds"]
        steady = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
        estimate = seconds[0] + 49 * steady
        splits = runfolder.read_json(folder / "full" / "config.json")["splits"]
        print(
            f"full run: {epochs} epochs in {result.wall_time / 60:.1f} min; epoch {steady:.1f} s "
            f"({splits['fit']} samples: {splits['fit'] / steady:,.0f} samples/s with validation on {splits['val']}) "
            f"(first {seconds[0]:.1f} s); 50 epochs: {'measured' if epochs == 50 else 'estimated'} "
            f"{(result.wall_time if epochs == 50 else estimate) / 60:.1f} min"
        )


if __name__ == "__main__":
    main()
