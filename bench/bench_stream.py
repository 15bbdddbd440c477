"""Latency of `evaluate.py --stream` per window, and time of `evaluate.py --explain` per recording.

Builds the demo's 50 x 50 network (mans.network.model.build_model, 60 NTU classes, untrained: the latency does not
depend on the weights), saves it as a run folder, then streams the frames of synthetic NTU recordings through
mans.evaluation.stream.run_stream at stride 1 (every frame ends a window, the hardest case) and explains a few of them
with mans.evaluation.explain.explain_files. Prints the median / 95th percentile / max latency per window (from the
arrival of a window's last frame line to its printed result: preprocessing and the model), the frame rate
that stride 1 keeps up with, and the seconds per explained recording, beside the machine and versions.

    python bench/bench_stream.py                      # 4 recordings of 120 frames, window 50
    python bench/bench_stream.py --recordings 8 --window 30 --explain 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=4, help="synthetic recordings streamed one after another")
    parser.add_argument("--frames", type=int, default=120, help="frames per recording")
    parser.add_argument("--window", type=int, default=50, help="frames per window (the model's S by default)")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--explain", type=int, default=3, help="recordings explained (PNG each)")
    return parser.parse_args(argv)


def write_run(folder: pathlib.Path) -> pathlib.Path:
    """A run folder with the demo's untrained 50 x 50 network for NTU-60 and the record evaluate.py reads."""
    from mans.network.model import build_model
    from mans.preprocessing import datasets

    folder.mkdir(parents=True)
    build_model(60).save(folder / "best.keras")
    attrs = {"dataset": "ntu60", "mode": "faithful", "size": 50, "class_names": list(datasets.ACTION_NAMES[:60])}
    (folder / "config.json").write_text(json.dumps({"config": {}, "data_attrs": attrs}))
    return folder / "best.keras"


def write_recordings(folder: pathlib.Path, count: int, frames: int) -> list[pathlib.Path]:
    from mans.preprocessing import synthetic

    folder.mkdir(parents=True)
    paths = []
    for index in range(count):
        name = f"S001C001P{index + 1:03d}R001A{index % 60 + 1:03d}"
        path = folder / f"{name}.skeleton"
        path.write_text(synthetic.render_sample(name, index, frames=(frames, frames)))
        paths.append(path)
    return paths


def frame_lines(paths: list[pathlib.Path]) -> list[str]:
    from mans.evaluation import stream

    buffer = io.StringIO()
    stream.print_frames([str(p) for p in paths], out=buffer)
    return buffer.getvalue().splitlines(keepends=True)


def measure_stream(checkpoint: pathlib.Path, lines: list[str], window: int, stride: int):
    from mans.evaluation import stream

    return stream.stream(checkpoint, window=window, stride=stride, lines=lines, out=io.StringIO(),
                         err=io.StringIO())


def measure_explain(checkpoint: pathlib.Path, paths: list[pathlib.Path], out: pathlib.Path) -> list[float]:
    """Seconds to each written picture, as evaluate.py --explain gives them (the first includes loading)."""
    from mans.evaluation import explain

    seconds, started = [], time.perf_counter()
    for _ in explain.explain_files(checkpoint, paths, out, progress=False):
        seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
    return seconds


def versions() -> str:
    import keras
    import numpy as np

    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"Keras {keras.__version__} ({keras.backend.backend()}), NumPy {np.__version__}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        checkpoint = write_run(work / "run")
        paths = write_recordings(work / "skeletons", args.recordings, args.frames)
        summary = measure_stream(checkpoint, frame_lines(paths), args.window, args.stride)
        seconds = measure_explain(checkpoint, paths[: args.explain], work / "explain")
    latency = summary.latency()
    print(versions())
    print(f"stream: {summary.windows} windows of {args.window} frames at stride {args.stride}, latency "
          f"median {latency['median']:.1f} ms, 95th percentile {latency['p95']:.1f} ms, max {latency['max']:.1f} ms "
          f"(keeps up with {1e3 / latency['median']:.0f} frames/s at stride 1)")
    later = f", then {sum(seconds[1:]) / (len(seconds) - 1):.2f} s per recording" if len(seconds) > 1 else ""
    print(f"explain: {len(seconds)} recordings, the first (checkpoint loaded, attention model traced) in "
          f"{seconds[0]:.1f} s{later}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
