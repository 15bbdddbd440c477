"""Speed and peak memory of process_data.py on synthetic NTU-like files, the whole process included.

Generates N synthetic `.skeleton` files (1-2 bodies plus the sensor noise of mans.preprocessing.synthetic; frame
counts 40-300, 40 + an exponential of mean 60, so ~100 on average), then runs
`python process_data.py --skeletons DIR --out OUT --workers W` as a subprocess `--repeat` times and
prints files/s (wall clock of the subprocess: interpreter start-up, imports, pool, writing), its
peak resident memory (ru_maxrss of that child and its workers, from os.wait4) and the CPU time of
that process tree (user + sys), which does not depend on other load on the machine. A last run on a
quarter of the files shows that peak memory does not grow with the number of files. `--profile`
also times the stages of one worker per file (parse, transform, crop to the stored rows).
Example: python bench/bench_preprocess.py --files 2000 --workers 2
Target (issue #2): >= 500 files/s with 2 workers on a 2-core machine, peak memory < 1 GiB.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mans.formats.ntu import read_skeleton  # noqa: E402
from mans.preprocessing import preprocess, samples  # noqa: E402
from mans.preprocessing.synthetic import render_sample, sample_names  # noqa: E402


def frame_counts(files: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(40 + rng.exponential(60, files), 40, 300).astype(int)


def _write(job: tuple[str, str, int, int]) -> None:
    folder, name, index, frames = job
    text = render_sample(name, (7, index), frames=(frames, frames))
    (pathlib.Path(folder) / f"{name}.skeleton").write_bytes(text.encode("ascii"))


def generate(folder: pathlib.Path, files: int, workers: int) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    counts = frame_counts(files, 0)
    jobs = [(str(folder), str(name), i, int(counts[i])) for i, name in enumerate(sample_names(files, "ntu60"))]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_write, jobs, chunksize=32)
    return counts


def run_once(folder: pathlib.Path, out: pathlib.Path, workers: int, mode: str, limit: int | None) -> dict:
    command = [sys.executable, str(REPO / "process_data.py"), "--skeletons", str(folder), "--out", str(out),
               "--workers", str(workers), "--mode", mode, "--overwrite", "--quiet"]
    if limit:
        command += ["--limit", str(limit)]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"process_data.py failed ({child.returncode}): {stderr.strip()}")
    files = limit or len(list(folder.glob("*.skeleton")))
    return {"files": files, "seconds": seconds, "files_per_s": files / seconds,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024,
            "summary": stdout.strip()}


def profile(folder: pathlib.Path, count: int = 200) -> None:
    paths = sorted(folder.glob("*.skeleton"))[:count]
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    start = time.perf_counter()
    skeletons = [read_skeleton(p) for p in paths]
    parse = time.perf_counter() - start
    timings = {"parse (read_skeleton)": parse}
    images = None
    for mode in preprocess.MODES:
        start = time.perf_counter()
        out = [preprocess.process_skeleton(s, mode) for s in skeletons]
        timings[f"transform {mode}"] = time.perf_counter() - start
        images = images or out
    start = time.perf_counter()
    cropped = [samples.crop_rows(image)[1] for image in images]
    timings["crop to the stored rows"] = time.perf_counter() - start
    frames = np.mean([s.num_frames for s in skeletons])
    print(f"profile, one process, {len(paths)} files ({frames:.0f} frames, {size_mb / len(paths) * 1000:.0f} KB "
          f"on average; parse {size_mb / parse:.0f} MB/s):")
    for stage, seconds in timings.items():
        print(f"  {stage:28s} {1000 * seconds / len(paths):6.3f} ms/file")
    print(f"  stored rows: {np.mean([len(c) for c in cropped]):.0f} of {images[0].shape[0]} per image")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--mode", choices=preprocess.MODES, default="faithful")
    parser.add_argument("--folder", help="reuse (or create) the synthetic files here (default: a temp folder)")
    parser.add_argument("--profile", action="store_true", help="also time the stages per file")
    args = parser.parse_args(argv)

    import h5py
    import pandas

    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas {pandas.__version__}, "
          f"h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}); {platform.platform()}; "
          f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}); "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.folder or tmp) / f"synthetic-{args.files}"
        if len(list(folder.glob("*.skeleton"))) != args.files:
            start = time.perf_counter()
            generate(folder, args.files, max(1, os.cpu_count() or 1))
            print(f"generated {args.files} files in {time.perf_counter() - start:.1f} s")
        counts = frame_counts(args.files, 0)
        size = sum(p.stat().st_size for p in folder.glob("*.skeleton")) / 1e6
        print(f"{args.files} files, {counts.mean():.0f} frames on average ({counts.min()}-{counts.max()}), "
              f"{size:.0f} MB in {folder}")
        out = pathlib.Path(tmp) / "bench.h5"
        for run in range(args.repeat):
            result = run_once(folder, out, args.workers, args.mode, None)
            print(f"run {run + 1}: {result['files']} files, {args.workers} workers, {args.mode}: "
                  f"{result['seconds']:.2f} s, {result['files_per_s']:.0f} files/s, "
                  f"peak memory {result['peak_mib']:.0f} MiB; CPU {result['cpu_s']:.2f} s "
                  f"({1000 * result['cpu_s'] / result['files']:.2f} ms/file, all processes), "
                  f"load average {os.getloadavg()[0]:.2f}")
        print(f"  process_data.py said: {result['summary']}")
        quarter = max(1, args.files // 4)
        result = run_once(folder, out, args.workers, args.mode, quarter)
        print(f"memory check on {quarter} files: peak memory {result['peak_mib']:.0f} MiB "
              f"({result['files_per_s']:.0f} files/s)")
        if args.profile:
            profile(folder)


if __name__ == "__main__":
    main()
