"""The HDF5 file of preprocessed samples, and the conversion of a folder of `.skeleton` files into it.

Layout (format "mans-hdf5/2"; training and evaluation rely on it):
    /rows /row_offset /row_count /first_row   each sample's S x S x 3 image, axes time, joint column (body 0's
                  25 joints, then body 1's), coord (x, y, z), stored as its rows that can carry data
                  (`mans.samples`, which also reads format 1's whole images /x (N, S, S, 3))
    /label        (N,) int16, 0-based action
    /setup /camera /performer /replication   (N,) int16, 1-based as in the sample name
    /frames       (N,) int32, the recording's original frame count
    /name         (N,) S20 ASCII sample names, ascending; the samples are stored in this order
    attrs: format, dataset, mode, size, num_classes, class_names (JSON), joint_layout (JSON),
           axes ("sample,time,joint,coord"), mans_version, command, created (ISO time), kept,
           skipped (JSON {reason: count})

`convert_folder` streams: workers parse and transform files and crop each image to its rows
(`mans.samples.crop_rows`), and the main process appends them in name order to `<out>.tmp.rows`, copied
into /rows at the end, so memory does not grow with the number of files and the bytes do not depend on
the number of workers. The file is written to `<out>.tmp` and renamed when complete; the skipped samples
are listed in `<out stem>.skipped.csv` beside it, and in
denoised mode the bodies dropped as noise in `<out stem>.denoised.csv` (name, body_id, rule; rules in
`mans.denoise.RULES`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import functools
import json
import multiprocessing
import os
import pathlib
import shlex
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

import h5py
import numpy as np
from tqdm import tqdm

import mans
from mans import datasets, msr_action3d, preprocess, samples, utkinect
from mans.skeleton_io import SkeletonFormatError, parse_sample_name, read_skeleton

FORMAT = "mans-hdf5/2"
READABLE_FORMATS = ("mans-hdf5/1", FORMAT)  # 1: whole images in /x (mans 0.1 before the compact rows)
AXES = "sample,time,joint,coord"
NAME_LENGTH = 20  # SsssCcccPpppRrrrAaaa
MISSING_REASON = "missing-list"  # skipped on request: not an error under strict=True
_INT16_COLUMNS = ("label", "setup", "camera", "performer", "replication")
_JSON_ATTRS = ("class_names", "joint_layout", "skipped")


@dataclasses.dataclass(frozen=True)
class ConversionSummary:
    """What `convert_folder` did; `line()` is the one line the script prints."""

    out_path: pathlib.Path
    report_path: pathlib.Path
    dataset: str
    mode: str
    size: int
    files: int
    kept: int
    skipped: dict[str, int]
    seconds: float
    noise_report_path: pathlib.Path | None = None  # denoised mode: the bodies dropped as noise

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
        skipped = sum(self.skipped.values())
        return (
            f"{self.out_path}: kept {self.kept} of {self.files} files ({self.dataset}, {self.mode}, "
            f"size {self.size}), skipped {skipped}{f' ({reasons})' if reasons else ''}, "
            f"{self.seconds:.1f} s, {self.files_per_second:.0f} files/s; skip report {self.report_path}"
            f"{f', noise report {self.noise_report_path}' if self.noise_report_path else ''}"
        )


def _convert_one(path: str, mode: str, size: int, frames: str = "pad") -> tuple:
    """Worker: ("ok", frames, (first row, rows), {bodyID: rule} dropped as noise) or ("skip", reason, message)."""
    try:
        skel = read_skeleton(path)
        image, dropped = preprocess.process_skeleton_with_drops(skel, mode, size, frames=frames)
    except (SkeletonFormatError, preprocess.SampleSkipped) as error:
        return ("skip", error.reason, str(error))
    except OSError as error:
        return ("skip", "unreadable", f"{os.path.basename(path)}: {error.strerror or error}")
    except Exception as error:  # a bug, not bad input: fail the run, naming the file
        raise RuntimeError(f"{os.path.basename(path)}: {type(error).__name__}: {error}") from error
    return ("ok", skel.num_frames, samples.crop_rows(image), dropped)


def _init_worker(parent: int) -> None:
    """A conversion worker: Ctrl-C and SIGTERM are handled once, by the main process, which ends the workers
    (SIGTERM, default action: they end without a traceback); a worker whose parent is gone ends the same way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the main process's handler
    _end_with_parent(parent)


def _end_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM when the parent dies (PR_SET_PDEATHSIG); elsewhere, poll for it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        linux = sys.platform == "linux"
    except (OSError, AttributeError):
        linux = False
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)
    if not linux:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


@contextlib.contextmanager
def _ordered_results(function, tasks: list, workers: int) -> Iterator[Iterable]:
    """Results of `function` over `tasks`, in order; at most a bounded number of results pending."""
    if workers == 1:
        yield map(function, tasks)
        return
    chunksize = max(1, min(16, len(tasks) // (workers * 8)))
    window = threading.Semaphore(workers * chunksize * 4)  # tasks handed out but not yet consumed
    stop = threading.Event()

    def feed():
        for task in tasks:
            while not window.acquire(timeout=0.1):
                if stop.is_set():
                    return
            yield task

    def results():
        for result in pool.imap(function, feed(), chunksize):
            window.release()
            yield result

    # fork where it is safe: workers inherit the imports (pandas, h5py) instead of repeating them
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    pool = context.Pool(workers, initializer=_init_worker, initargs=(os.getpid(),))
    try:
        yield results()
    finally:
        stop.set()
        pool.terminate()
        pool.join()


def _read_missing_list(path: str | os.PathLike | None) -> set[str]:
    if path is None:
        return set()
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing-sample list {path} not found")
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(os.path.basename(line).removesuffix(".skeleton"))
    return names


def _list_files(skeleton_dir: str | os.PathLike) -> list[pathlib.Path]:
    folder = pathlib.Path(skeleton_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"skeleton folder {folder} not found (expected a folder of .skeleton files)")
    paths = sorted(folder.glob("*.skeleton"), key=lambda p: p.name)
    if not paths:
        raise ValueError(f"expected .skeleton files in {folder}, found none")
    return paths


def report_path_for(out_path: str | os.PathLike) -> pathlib.Path:
    """Where the skip report of an output goes: `<out stem>.skipped.csv` beside it."""
    out_path = pathlib.Path(out_path)
    return out_path.with_name(out_path.stem + ".skipped.csv")


def noise_report_path_for(out_path: str | os.PathLike) -> pathlib.Path:
    """Where the bodies dropped as noise in denoised mode are listed: `<out stem>.denoised.csv` beside it."""
    out_path = pathlib.Path(out_path)
    return out_path.with_name(out_path.stem + ".denoised.csv")


def _write_report(path: pathlib.Path, skips: list[tuple[str, str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("name", "reason", "message"))
        writer.writerows(sorted(skips))
    os.replace(tmp, path)


def _write_noise_report(path: pathlib.Path, noise: list[tuple[str, int, str]]) -> None:
    """(name, bodyID, rule) rows as they come: files in name order, bodies in the order they were dropped."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("name", "body_id", "rule"))
        writer.writerows(noise)
    os.replace(tmp, path)


def _check_arguments(
    mode: str,
    size: int,
    workers: int | None,
    limit: int | None,
    layout: preprocess.JointLayout = preprocess.NTU_LAYOUT,
    frames: str = "pad",
) -> int:
    if mode not in preprocess.MODES:
        raise ValueError(f"expected mode among {list(preprocess.MODES)}, found {mode!r}")
    if frames not in preprocess.FRAMES:
        raise ValueError(f"expected frames among {list(preprocess.FRAMES)}, found {frames!r}")
    preprocess.check_size(size, layout)
    if limit is not None and limit < 1:
        raise ValueError(f"expected limit >= 1, found {limit}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"expected workers >= 1, found {workers}")
    return workers


def convert_folder(
    skeleton_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    dataset: str | None = None,
    mode: str = "faithful",
    size: int = 50,
    frames: str = "pad",
    workers: int | None = None,
    missing_list: str | os.PathLike | None = None,
    limit: int | None = None,
    strict: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> ConversionSummary:
    """Convert every `*.skeleton` file of a folder into one HDF5 file (layout in the module docstring).

    Files are taken in name order (`limit`: only the first `limit` of them). Skipped, with a reason in
    the skip report: names on `missing_list` (NTU's list of samples without usable skeletons; the list
    decides, whatever the file holds; reason "missing-list"), unparseable names ("bad-name"), malformed
    files (`SkeletonFormatError` reasons, "no-body" included) and samples the mode cannot use
    (`preprocess.SampleSkipped` reasons). `strict`: any skip other than "missing-list" is an error.
    `dataset`: "ntu60" or "ntu120"; None detects it from the action numbers (any > 60: ntu120).
    `workers`: processes (None: os.cpu_count()); the stored bytes do not depend on it.
    `command`: recorded in the attrs (default: this process's argv). In denoised mode the bodies dropped
    as noise go to `<out stem>.denoised.csv`: one row (name, body_id, rule) per body, files in name order,
    bodies in the order the rules dropped them.
    Raises: FileNotFoundError, FileExistsError (output exists, overwrite=False), ValueError.
    """
    started = time.perf_counter()
    workers = _check_arguments(mode, size, workers, limit, frames=frames)
    out_path = _check_output(out_path, overwrite)
    paths = _list_files(skeleton_dir)[:limit]
    missing = _read_missing_list(missing_list)

    skips: list[tuple[str, str, str]] = []
    candidates: list[tuple[pathlib.Path, object]] = []
    for path in paths:
        name = path.name.removesuffix(".skeleton")
        if name in missing:
            skips.append((name, MISSING_REASON, "listed in the missing-sample list"))
            continue
        try:
            sample = parse_sample_name(path)
        except ValueError as error:
            _skip(skips, name, getattr(error, "reason", "bad-name"), str(error), strict)
            continue
        if str(sample) != name:  # e.g. "S001C001P001R001A001.copy": would collide with the real one
            _skip(skips, name, "bad-name", f"expected a name like {sample}.skeleton, found {path.name}", strict)
            continue
        candidates.append((path, sample))

    spec = datasets.get_dataset(dataset or datasets.detect_dataset(s.action for _, s in candidates))
    too_large = [path.name for path, s in candidates if s.action > spec.num_classes]
    if too_large:
        raise ValueError(
            f"expected actions 1-{spec.num_classes} for {spec.name}, found {too_large[0]} "
            f"and {len(too_large) - 1} more with larger action numbers (use --dataset ntu120)"
        )

    function = functools.partial(_convert_one, mode=mode, size=size, frames=frames)
    tasks = [str(path) for path, _ in candidates]

    noise: list[tuple[str, int, str]] = []  # (name, bodyID, rule)

    def records(results: Iterable) -> Iterator[tuple[str, dict[str, int], int, tuple]]:
        bar = tqdm(results, total=len(tasks), unit="file", disable=None if progress else True)
        for (path, sample), result in zip(candidates, bar, strict=True):
            name = path.name.removesuffix(".skeleton")
            if result[0] == "skip":
                _skip(skips, name, result[1], result[2], strict)
                continue
            noise.extend((name, body_id, rule) for body_id, rule in result[3].items())
            yield name, {key: getattr(sample, key) for key in _INT16_COLUMNS}, result[1], result[2]
        bar.close()

    with _ordered_results(function, tasks, min(workers, max(1, len(tasks)))) as results:
        kept, skipped = _write_output(out_path, size, records(results), skips, spec, (mode, frames), command,
                                      overwrite)
    noise_report = noise_report_path_for(out_path) if mode == "denoised" else None
    if noise_report is not None:
        _write_noise_report(noise_report, noise)
    return ConversionSummary(
        out_path=out_path, report_path=report_path_for(out_path), dataset=spec.name, mode=mode, size=size,
        files=len(paths), kept=kept, skipped=skipped, seconds=time.perf_counter() - started,
        noise_report_path=noise_report,
    )


def convert_utkinect(
    folder: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    mode: str = "faithful",
    size: int = 50,
    frames: str | None = None,
    strict: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> ConversionSummary:
    """Convert a UT-Kinect-Action3D folder (`joints/`, `actionLabel.txt`) into the same HDF5 layout.

    Each labelled action segment is one sample named `sSS_eEE_<action>`; the "performer" column holds the
    subject (1-10) and "replication" the episode (1-2); "setup" and "camera" are 1. Segments without a
    range (`NaN NaN`) are skipped (reason "no-segment"). The view normalisation and the image are NTU's,
    with Kinect v1's 20 joints of one body (`preprocess.KINECT_V1_LAYOUT`).
    Raises: FileNotFoundError (folder, label file or a joints file missing), ValueError (a malformed file,
        a label outside its recording), FileExistsError (output exists, overwrite=False).
    """
    started = time.perf_counter()
    spec = datasets.get_dataset("utkinect")
    frames = frames or spec.frames
    _check_arguments(mode, size, 1, None, spec.layout, frames)
    out_path = _check_output(out_path, overwrite)
    segments, no_segment = utkinect.read_action_labels(pathlib.Path(folder) / utkinect.LABEL_FILE)
    skips = [(name, reason, "no frame range in actionLabel.txt (NaN NaN)") for name, reason in no_segment]

    def sequences() -> Iterator[tuple[str, dict[str, int], Callable[[], object]]]:
        for sample in utkinect.iter_samples(folder):
            segment = sample.segment
            meta = {"label": segment.label, "setup": 1, "camera": 1, "performer": segment.subject,
                    "replication": segment.episode}
            yield segment.name, meta, (lambda skeleton=sample.skeleton: skeleton)

    records = _sequence_records(sequences(), len(segments), spec, (mode, size, frames), skips, strict, progress,
                                "segment")
    kept, skipped = _write_output(out_path, size, records, skips, spec, (mode, frames), command, overwrite)
    return ConversionSummary(
        out_path=out_path, report_path=report_path_for(out_path), dataset=spec.name, mode=mode, size=size,
        files=len(segments) + len(no_segment), kept=kept, skipped=skipped, seconds=time.perf_counter() - started,
    )


def convert_msr_action3d(
    folder: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    mode: str = "faithful",
    size: int = 50,
    frames: str | None = None,
    strict: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> ConversionSummary:
    """Convert an MSR Action3D folder (`aAA_sSS_eEE_skeleton3D.txt` files) into the same HDF5 layout.

    Each file is one sample named `aAA_sSS_eEE`; "performer" holds the subject (1-10) and "replication" the
    episode; "setup" and "camera" are 1. The joints are read into Kinect v1's order (`mans.msr_action3d`), so
    the view normalisation is UT-Kinect's. A file with only all-zero frames is skipped ("all-zero").
    Raises: FileNotFoundError (no folder), ValueError (no recording, a malformed file under strict=True),
        FileExistsError (output exists, overwrite=False).
    """
    started = time.perf_counter()
    spec = datasets.get_dataset("msr-action3d")
    frames = frames or spec.frames
    _check_arguments(mode, size, 1, None, spec.layout, frames)
    out_path = _check_output(out_path, overwrite)
    recordings = list(msr_action3d.iter_recordings(folder))
    skips: list[tuple[str, str, str]] = []

    def sequences() -> Iterator[tuple[str, dict[str, int], Callable[[], object]]]:
        for path, recording in recordings:
            meta = {"label": recording.action - 1, "setup": 1, "camera": 1, "performer": recording.subject,
                    "replication": recording.episode}
            yield recording.name, meta, functools.partial(msr_action3d.read_recording, path)

    records = _sequence_records(sequences(), len(recordings), spec, (mode, size, frames), skips, strict, progress,
                                "file")
    kept, skipped = _write_output(out_path, size, records, skips, spec, (mode, frames), command, overwrite)
    return ConversionSummary(
        out_path=out_path, report_path=report_path_for(out_path), dataset=spec.name, mode=mode, size=size,
        files=len(recordings), kept=kept, skipped=skipped, seconds=time.perf_counter() - started,
    )


def _sequence_records(
    sequences: Iterable[tuple[str, dict[str, int], Callable[[], object]]],
    total: int,
    spec: datasets.DatasetSpec,
    settings: tuple[str, int, str],
    skips: list[tuple[str, str, str]],
    strict: bool,
    progress: bool,
    unit: str,
) -> Iterator[tuple[str, dict[str, int], int, tuple]]:
    """(name, columns, frames, (first row, rows)) records of (name, columns, load the Skeleton) sequences, in one
    process; a sequence that cannot be read or processed is skipped with its reason. settings: (mode, size, frames)."""
    mode, size, frames = settings
    for name, meta, load in tqdm(sequences, total=total, unit=unit, disable=None if progress else True):
        try:
            skeleton = load()
            image = preprocess.process_skeleton(skeleton, mode, size, spec.layout, frames)
        except preprocess.SampleSkipped as error:
            _skip(skips, name, error.reason, str(error), strict)
            continue
        except ValueError as error:
            _skip(skips, name, "malformed", str(error), strict)
            continue
        yield name, meta, skeleton.num_frames, samples.crop_rows(image)


def _check_output(out_path: str | os.PathLike, overwrite: bool) -> pathlib.Path:
    out_path = pathlib.Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists: pass --overwrite (overwrite=True) to replace it")
    if out_path.is_dir():
        raise ValueError(f"expected an output file name, found the folder {out_path}")
    return out_path


def _write_output(
    out_path: pathlib.Path,
    size: int,
    records: Iterable[tuple[str, dict[str, int], int, tuple]],
    skips: list[tuple[str, str, str]],
    spec: datasets.DatasetSpec,
    preprocessing: tuple[str, str],
    command: str | None,
    overwrite: bool,
) -> tuple[int, dict[str, int]]:
    """Stream (name, columns, frames, (first row, rows)) records into `<out>.tmp`, then rename it to `out_path`.

    Returns (kept, skipped by reason). The skip report is written beside the output; on any error,
    Ctrl-C and SIGTERM included, the temporary files are removed and an existing output is left as it was.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    rows = samples.RowsWriter(out_path.with_name(out_path.name + ".tmp.rows"), size, spec.layout.columns)
    columns: dict[str, list] = {key: [] for key in (*_INT16_COLUMNS, "frames", "name")}
    try:
        with h5py.File(tmp, "w") as h5:
            for name, meta, frames, (first_row, image_rows) in records:
                rows.add(first_row, image_rows)
                for key in _INT16_COLUMNS:
                    columns[key].append(meta[key])
                columns["frames"].append(frames)
                columns["name"].append(name)
            kept = len(columns["name"])
            rows.finish(h5)
            for key in _INT16_COLUMNS:
                h5.create_dataset(key, data=np.array(columns[key], np.int16))
            h5.create_dataset("frames", data=np.array(columns["frames"], np.int32))
            h5.create_dataset("name", data=np.array(columns["name"], f"S{NAME_LENGTH}"))
            skipped = dict(sorted(Counter(reason for _, reason, _ in skips).items()))
            h5.attrs.update(_attrs(spec, preprocessing, size, command, kept, skipped))
        report = report_path_for(out_path)
        _write_report(report, skips)
        if kept == 0:
            raise ValueError(f"expected at least one usable sample, found none: see {report}")
        if out_path.exists() and not overwrite:
            raise FileExistsError(f"{out_path} appeared during the run: pass --overwrite to replace it")
        os.replace(tmp, out_path)
    except BaseException:
        rows.discard()
        tmp.unlink(missing_ok=True)
        raise
    return kept, skipped


def _skip(skips: list, name: str, reason: str, message: str, strict: bool) -> None:
    if strict and reason != MISSING_REASON:
        raise ValueError(f"{name} skipped ({reason}): {message} [strict: any skip is an error]")
    skips.append((name, reason, message))


def _attrs(spec, preprocessing: tuple[str, str], size: int, command: str | None, kept: int, skipped: dict) -> dict:
    mode, frames = preprocessing
    return {
        "format": FORMAT,
        "dataset": spec.name,
        "mode": mode,
        "frames": frames,
        "size": size,
        "num_classes": spec.num_classes,
        "class_names": json.dumps(list(spec.class_names)),
        "joint_layout": json.dumps({"bodies": spec.max_bodies, "joints": spec.num_joints, "padded_to": size}),
        "axes": AXES,
        "mans_version": mans.__version__,
        "command": command if command is not None else shlex.join(sys.argv),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kept": kept,
        "skipped": json.dumps(skipped),
    }


def read_metadata(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Every column but /x, and the decoded attrs, of a file written by `convert_folder`.

    Returns: (columns, attrs): columns "label" "setup" "camera" "performer" "replication" (int16),
        "frames" (int32), "name" (str array); attrs with JSON values decoded and numbers as int.
    Raises: FileNotFoundError for a missing file, ValueError for a file that is not a mans HDF5 file.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (expected an HDF5 file written by process_data.py)")
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"expected an HDF5 file written by process_data.py, found {path} ({error})") from None
    with h5:
        found = h5.attrs.get("format")
        if found not in READABLE_FORMATS:
            raise ValueError(f"expected a {FORMAT!r} file written by process_data.py, found {path} (format {found!r})")
        columns = {key: h5[key][()] for key in h5 if key not in ("x", "rows", *samples.ROW_COLUMNS)}
        raw_attrs = dict(h5.attrs)
    columns["name"] = columns["name"].astype(str)
    attrs: dict[str, object] = {}
    for key, value in raw_attrs.items():
        if key in _JSON_ATTRS:
            value = json.loads(value)
        elif isinstance(value, np.integer):
            value = int(value)
        attrs[key] = value
    return columns, attrs
