"""Parse speed of mans.formats.ntu.read_skeleton on synthetic NTU files, one core.

Writes N synthetic `.skeleton` files (1-2 bodies plus sensor noise) to a temporary folder, then reads
them all with read_skeleton, twice, and prints MB/s, files/s and ms/file with the library versions.
Rates are given for the process's CPU time (what one free core would take, robust on a shared
machine) and for the wall clock (what this run took, other processes included).
--approaches also times the alternatives the parser was chosen from, on the same files.
Example: python bench/bench_parse.py --files 500 --frames 40 300
"""

import argparse
import io
import itertools
import os
import pathlib
import platform
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from mans import __version__ as mans_version  # noqa: E402
from mans.formats.ntu import read_skeleton  # noqa: E402
from mans.preprocessing.synthetic import write_synthetic_dataset  # noqa: E402


def joint_lines(data: bytes) -> list[bytes]:
    """The joint lines of a well-formed file (the lines with 12 fields)."""
    return [line for line in data.splitlines() if line.count(b" ") == 11]


def alternatives() -> dict:
    """Whole-file parsers the fast path was chosen from (each returns the joint values)."""

    def pandas_all_columns(data):
        return pd.read_csv(io.BytesIO(b"\n".join(joint_lines(data))), sep=" ", header=None).to_numpy()

    def pandas_ragged_whole_file(data):
        return pd.read_csv(io.BytesIO(data), sep=r"\s+", header=None, names=range(12)).to_numpy()

    def numpy_loadtxt(data):
        return np.loadtxt(joint_lines(data))

    def numpy_fromstring(data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return np.fromstring(b" ".join(joint_lines(data)), sep=" ")

    def bytes_to_float_array(data):
        tokens = list(itertools.chain.from_iterable(line.split() for line in joint_lines(data)))
        return np.array(tokens).astype(np.float64)

    return {
        "pandas.read_csv, joint lines, all 12 columns": pandas_all_columns,
        "pandas.read_csv, whole file, sep=\\s+": pandas_ragged_whole_file,
        "np.loadtxt on the list of joint lines": numpy_loadtxt,
        "np.fromstring on the joined joint lines": numpy_fromstring,
        "bytes.split -> 'S' array -> float64": bytes_to_float_array,
    }


def rates(seconds: float, files: int, total_bytes: int) -> str:
    return (f"{total_bytes / seconds / 1e6:6.1f} MB/s {files / seconds:6.1f} files/s "
            f"{1e3 * seconds / files:6.3f} ms/file")  # fmt: skip


def time_reader(label: str, paths: list[pathlib.Path], total_bytes: int) -> None:
    """Wall-clock and CPU time: on a shared machine the CPU time is what one free core would take."""
    wall, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        read_skeleton(path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: CPU time {rates(cpu, len(paths), total_bytes)} | "
          f"wall clock {rates(wall, len(paths), total_bytes)}")  # fmt: skip


def time_alternatives(paths: list[pathlib.Path], total_bytes: int) -> None:
    contents = [path.read_bytes() for path in paths]
    for label, parse in alternatives().items():
        cpu = time.process_time()
        for data in contents:
            parse(data)
        print(f"  {label:45s} CPU time {rates(time.process_time() - cpu, len(paths), total_bytes)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500, help="synthetic files to write and read")
    parser.add_argument("--frames", type=int, nargs=2, default=(40, 300), metavar=("LO", "HI"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--approaches", action="store_true", help="also time the alternative parsers")
    args = parser.parse_args(argv)

    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
          f"mans {mans_version}; {platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} CPUs, one core used, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        start, cpu = time.perf_counter(), time.process_time()
        paths = write_synthetic_dataset(folder, args.files, num_actions=60, seed=args.seed, frames=tuple(args.frames))
        written, cpu = time.perf_counter() - start, time.process_time() - cpu
        total_bytes = sum(path.stat().st_size for path in paths)
        frames = [read_skeleton(path).num_frames for path in paths]
        size = total_bytes / len(paths) / 1e3
        print(f"wrote {len(paths)} files in {written:.1f} s, {cpu:.1f} s CPU ({1e3 * cpu / len(paths):.1f} ms/file), "
              f"{size:.0f} KB and {np.mean(frames):.0f} frames per file on average")  # fmt: skip
        for run in (1, 2):
            time_reader(f"read_skeleton, run {run}", paths, total_bytes)
        print(f"load average after the runs: {os.getloadavg()[0]:.2f} (other processes share the cores)")
        if args.approaches:
            print("alternatives (parsing only, no validation or assembly):")
            time_alternatives(paths, total_bytes)


if __name__ == "__main__":
    main()
