"""The HDF5 file of preprocessed samples, and the one conversion of a folder of recordings into it.

Layout (format "mans-hdf5/2"; training and evaluation rely on it):
    /rows /row_offset /row_count /first_row   each sample's S x S x 3 image, axes time, joint column (body 0's
                  joints, then body 1's), coord (x, y, z; for 2D keypoints x, up, score:
                  `preprocess.view_frame_2d`), stored as its rows that can carry data (`samples`,
                  which also reads format 1's whole images /x (N, S, S, 3))
    /label        (N,) int16, 0-based action
    /setup /camera /performer /replication   (N,) int16, 1-based as in the sample name (a description's
                  "subject" is stored as /performer; columns it lacks hold 1)
    /<column>     (N,) int32 or UTF-8 bytes: a description's other grouping columns (e.g. /view)
    /frames       (N,) int32, the recording's original frame count
    /name         (N,) S20 (or longer) UTF-8 sample names, in the reader's order (NTU: ascending)
    attrs: format, dataset, mode, frames, signs, centre, size, num_classes, class_names (JSON), joint_layout (JSON),
           joint_names (JSON), bones (JSON, 0-based pairs), description (JSON, the dataset's description with
           its leave-one-out folds filled in), axes ("sample,time,joint,coord"), mans_version, command,
           created (ISO time), kept, skipped (JSON {reason: count})

`convert_folder` streams: workers parse and transform files and crop each image to its rows
(`mans.preprocessing.samples.crop_rows`), and the main process appends them in name order to `<out>.tmp.rows`, copied
into /rows at the end, so memory does not grow with the number of files and the bytes do not depend on
the number of workers. The file is written to `<out>.tmp` and renamed when complete; the skipped samples
are listed in `<out stem>.skipped.csv` beside it, and in
denoised mode the bodies dropped as noise in `<out stem>.denoised.csv` (name, body_id, rule; rules in
`mans.preprocessing.denoise.RULES`).
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
from collections.abc import Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np
from tqdm import tqdm

import mans
from mans import formats
from mans.formats import MISSING_REASON
from mans.formats.ntu import SkeletonFormatError
from mans.preprocessing import datasets, description, preprocess, samples, splits

FORMAT = "mans-hdf5/2"
READABLE_FORMATS = ("mans-hdf5/1", FORMAT)  # 1: whole images in /x (mans 0.1 before the compact rows)
AXES = "sample,time,joint,coord"
NAME_LENGTH = 20  # SsssCcccPpppRrrrAaaa
_INT16_COLUMNS = ("label", "setup", "camera", "performer", "replication")
_JSON_ATTRS = ("class_names", "joint_layout", "skipped", "joint_names", "bones", "description")


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
    preprocessing: preprocess.Preprocessing | None = None
    notes: tuple[str, ...] = ()  # lines for the user before the summary (a labels column nothing reads, ...)

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else float("inf")

    def _settings(self) -> str:
        if self.preprocessing is None:
            return ""
        p = self.preprocessing
        scale = ", scaled to the torso" if p.scale == "torso" else ""
        return f"frames {p.frames}, signs {p.signs}, centre {p.centre}{scale}, {p.modality} images; "

    def line(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
        skipped = sum(self.skipped.values())
        return (
            f"{self.out_path}: kept {self.kept} of {self.files} files ({self.dataset}, {self.mode}, "
            f"size {self.size}), skipped {skipped}{f' ({reasons})' if reasons else ''}, "
            f"{self.seconds:.1f} s, {self.files_per_second:.0f} files/s; {self._settings()}"
            f"skip report {self.report_path}"
            f"{f', noise report {self.noise_report_path}' if self.noise_report_path else ''}"
        )


def _convert_one(task: tuple, preprocessing: preprocess.Preprocessing, size: int) -> tuple:
    """Worker: ("ok", frames, (first row, rows), {bodyID: rule} dropped as noise) or ("skip", reason, message).

    task: (load, source, layout): the raw format's load function, its source and the dataset's joint layout.
    """
    load, source, layout = task
    label = os.path.basename(str(source[0] if isinstance(source, tuple) else source))
    try:
        skel = load(source)
        image, dropped = preprocess.image_and_drops(skel, preprocessing, size, layout)
    except (SkeletonFormatError, preprocess.SampleSkipped) as error:
        return ("skip", error.reason, str(error))
    except OSError as error:
        return ("skip", "unreadable", f"{label}: {error.strerror or error}")
    except ValueError as error:
        return ("skip", "malformed", str(error))
    except Exception as error:  # a bug, not bad input: fail the run, naming the file
        raise RuntimeError(f"{label}: {type(error).__name__}: {error}") from error
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
    size: int, workers: int | None, limit: int | None, layout: preprocess.JointLayout = preprocess.NTU_LAYOUT
) -> int:
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
    dataset: str | datasets.DatasetSpec | None = None,
    mode: str = "faithful",
    size: int = 50,
    frames: str | None = None,
    signs: str | None = None,
    centre: str | None = None,
    modality: str = "joint",
    modalities: Sequence[str] | None = None,
    scale: str | None = None,
    workers: int | None = None,
    missing_list: str | os.PathLike | None = None,
    limit: int | None = None,
    strict: bool = False,
    overwrite: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> ConversionSummary:
    """Convert a folder of recordings of any dataset into one HDF5 file (layout in the module docstring).

    dataset: a built-in name ("ntu60", "ntu120", "utkinect", "msr-action3d", "utd-mhad"), a description .json file or a
    `DatasetSpec`; None: NTU RGB+D, ntu120 when an action number exceeds 60, else ntu60. The description's
    format (`mans.formats`) lists the sequences; each is read, preprocessed (`frames`, `signs`, `centre`:
    the description's when None; `modality`: what the image holds, `preprocess.MODALITIES`; `scale`: the unit of
    the coordinates, `preprocess.SCALES`, the description's when None) and stored in the
    reader's order. `modalities`: the modalities converted together with this one (default: this one alone),
    recorded as the stored description's "modalities", the streams train_MANs.py trains by default. Skipped,
    with a reason in the skip report: names on
    `missing_list` (NTU's samples without skeletons; reason "missing-list"), sequences the reader refuses
    (NTU "bad-name" and `SkeletonFormatError` reasons; the folder format's "no-file", "empty", "joint-count",
    "channel-count", "body-count", "non-finite", "unreadable"; MSR Action3D "all-zero"), and samples the mode
    cannot use (`preprocess.SampleSkipped` reasons). `strict`: any skip other than "missing-list" is an error.
    A description problem (a split that selects nothing, a missing column) is refused before anything is
    written. `limit`: only the first `limit` files (NTU). `workers`: processes (None: os.cpu_count()); the
    stored bytes do not depend on it. `command`: recorded in the attrs (default: this process's argv). In
    denoised mode the bodies dropped as noise go to `<out stem>.denoised.csv`: one row (name, body_id, rule)
    per body, sequences in order, bodies in the order the rules dropped them.
    Raises: FileNotFoundError, FileExistsError (output exists, overwrite=False), ValueError
        (`description.DescriptionError` for a description problem).
    """
    started = time.perf_counter()
    if dataset is None:
        dataset = formats.ntu.detect_dataset(skeleton_dir, limit)
    spec = datasets.load_dataset(dataset) if isinstance(dataset, str) else dataset
    preprocessing = spec.preprocessing(mode, frames, signs, centre, modality, scale)
    workers = _check_arguments(size, workers, limit, spec.layout)
    if mode == "denoised" and spec.layout.dims != 3:
        raise ValueError(f"--mode denoised needs 3D joints; {spec.name} has 2D keypoints: use --mode faithful")
    out_path = _check_output(out_path, overwrite)
    raw_format = formats.format_named(spec.description.reader)
    listing = raw_format.list(skeleton_dir, spec, {"missing_list": missing_list, "limit": limit})
    spec = _resolved(spec, listing.entries, check_splits=not raw_format.whole_dataset)
    spec = _converted_together(spec, modalities or (modality,))
    skips: list[tuple[str, str, str]] = []
    for name, reason, message in listing.skips:
        _skip(skips, name, reason, message, strict)

    entries = listing.entries
    function = functools.partial(_convert_one, preprocessing=preprocessing, size=size)
    tasks = [(raw_format.load, entry.source, spec.layout) for entry in entries]
    noise: list[tuple[str, int, str]] = []  # (name, bodyID, rule)

    def records(results: Iterable) -> Iterator[tuple[str, dict, int, tuple]]:
        bar = tqdm(results, total=len(tasks), unit=raw_format.unit, disable=None if progress else True)
        for entry, result in zip(entries, bar, strict=True):
            if result[0] == "skip":
                _skip(skips, entry.name, result[1], result[2], strict)
                continue
            noise.extend((entry.name, body_id, rule) for body_id, rule in result[3].items())
            yield entry.name, entry.columns, result[1], result[2]
        bar.close()

    with _ordered_results(function, tasks, min(workers, max(1, len(tasks)))) as results:
        kept, skipped = _write_output(out_path, size, records(results), skips, spec, preprocessing, command, overwrite)
    noise_report = noise_report_path_for(out_path) if mode == "denoised" else None
    if noise_report is not None:
        _write_noise_report(noise_report, noise)
    return ConversionSummary(
        out_path=out_path, report_path=report_path_for(out_path), dataset=spec.name, mode=mode, size=size,
        files=listing.files, kept=kept, skipped=skipped, seconds=time.perf_counter() - started,
        noise_report_path=noise_report, preprocessing=preprocessing, notes=tuple(listing.notes),
    )


def _converted_together(spec: datasets.DatasetSpec, modalities: Sequence[str]) -> datasets.DatasetSpec:
    """The spec whose stored description names the modalities converted with this file (the streams
    train_MANs.py trains by default)."""
    if list(modalities) == spec.description.modalities:
        return spec
    return datasets.spec_from_description(spec.description.model_copy(update={"modalities": list(modalities)}))


def _resolved(spec: datasets.DatasetSpec, entries: list, check_splits: bool) -> datasets.DatasetSpec:
    """The spec with each leave-one-out split's folds filled in from the sequences' values; with
    `check_splits`, DescriptionError for a split that trains on none or all of them (nothing written yet)."""
    desc = spec.description
    rules = dict(desc.splits)
    meta = {key: np.array([entry.columns[key] for entry in entries]) for key in (entries[0].columns if entries else ())}
    source = f"description of {desc.name}"
    for name, rule in desc.splits.items():
        if rule.leave_one_out is not None:
            found = sorted(set(meta[splits.stored_column(rule.leave_one_out)].tolist())) if entries else []
            if rule.values is None:
                rules[name] = rule.model_copy(update={"values": found})
            if check_splits and len(found) < 2:
                raise description.DescriptionError(
                    f"{source}: key 'splits.{name}': leaving one {rule.leave_one_out} out needs 2 values or more, "
                    f"found {found}")
        elif check_splits and entries:
            train = splits.rule_mask(meta, rule)
            if not train.any() or train.all():
                side = "to train on" if not train.any() else "to test on"
                values = {c: sorted(set(meta[splits.stored_column(c)].tolist())) for c in rule.train}
                raise description.DescriptionError(
                    f"{source}: key 'splits.{name}': the rule {dict(rule.train)} leaves no sequence {side} "
                    f"(values found: {values})")
    if rules == desc.splits:
        return spec
    return datasets.spec_from_description(desc.model_copy(update={"splits": rules}))


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
    preprocessing: preprocess.Preprocessing,
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
    extra: dict[str, list] = {}  # a description's own grouping columns
    try:
        with h5py.File(tmp, "w") as h5:
            for name, meta, frames, (first_row, image_rows) in records:
                rows.add(first_row, image_rows)
                for key in _INT16_COLUMNS:
                    columns[key].append(meta[key])
                for key in meta.keys() - set(_INT16_COLUMNS):
                    extra.setdefault(key, []).append(meta[key])
                columns["frames"].append(frames)
                columns["name"].append(name)
            kept = len(columns["name"])
            rows.finish(h5)
            for key in _INT16_COLUMNS:
                h5.create_dataset(key, data=np.array(columns[key], np.int16))
            h5.create_dataset("frames", data=np.array(columns["frames"], np.int32))
            names = [name.encode() for name in columns["name"]]
            h5.create_dataset("name", data=np.array(names, f"S{max([NAME_LENGTH, *map(len, names)])}"))
            for key, values in sorted(extra.items()):
                h5.create_dataset(key, data=_column_array(values))
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


def _column_array(values: list) -> np.ndarray:
    """A grouping column as stored: int32 when every value is an integer, else UTF-8 bytes."""
    if all(isinstance(value, int) for value in values):
        return np.array(values, np.int32)
    encoded = [str(value).encode() for value in values]
    return np.array(encoded, f"S{max(1, *map(len, encoded))}")


def _skip(skips: list, name: str, reason: str, message: str, strict: bool) -> None:
    if strict and reason != MISSING_REASON:
        raise ValueError(f"{name} skipped ({reason}): {message} [strict: any skip is an error]")
    skips.append((name, reason, message))


def _attrs(
    spec, preprocessing: preprocess.Preprocessing, size: int, command: str | None, kept: int, skipped: dict
) -> dict:
    return {
        "format": FORMAT,
        "dataset": spec.name,
        **preprocessing.attrs(),
        "size": size,
        "num_classes": spec.num_classes,
        "class_names": json.dumps(list(spec.class_names)),
        "joint_layout": json.dumps({"bodies": spec.max_bodies, "joints": spec.num_joints, "padded_to": size}),
        "joint_names": json.dumps(list(spec.joint_names)),
        "bones": json.dumps([list(bone) for bone in spec.bones]),
        "description": spec.description.model_dump_json(),
        "axes": AXES,
        "mans_version": mans.__version__,
        "command": command if command is not None else shlex.join(sys.argv),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kept": kept,
        "skipped": json.dumps(skipped),
    }


def modality_path(out_path: str | os.PathLike, modality: str) -> pathlib.Path:
    """Where `process_data.py --modality A B ...` writes modality B beside OUT: OUT's stem + "-B" ("utd-bone.h5")."""
    path = pathlib.Path(out_path)
    return path.with_name(f"{path.stem}-{modality}{path.suffix}")


def modality_file(data_path: str | os.PathLike, modality: str) -> pathlib.Path:
    """The converted file of `modality` that belongs with `data_path`: the file itself when it holds that
    modality, else the one beside it named as `modality_path` names it (from the file's own name or from its name
    without its "-<modality>" suffix). FileNotFoundError naming the command that writes it."""
    path = pathlib.Path(data_path)
    own = modality_of(read_metadata(path)[1])
    if own == modality:
        return path
    base = path.with_name(path.name.replace(f"-{own}{path.suffix}", path.suffix))
    candidates = [modality_path(base, modality), base] if base != path else [modality_path(path, modality)]
    for candidate in candidates:
        if candidate.is_file() and modality_of(read_metadata(candidate)[1]) == modality:
            return candidate
    raise FileNotFoundError(
        f"{candidates[0]}: no {modality} file beside {path} (write it with process_data.py ... --modality {modality} "
        f"--out {candidates[0]}, the same settings as {path.name})"
    )


def modality_of(attrs: Mapping[str, object]) -> str:
    """The modality of a file's images, from its attrs (files written before modalities hold joint images)."""
    return str(attrs.get("modality", "joint"))


def converted_modalities(data_path: str | os.PathLike) -> list[str] | None:
    """The modalities converted together with `data_path` (its stored description's "modalities"), when it is
    the first of several (the file process_data.py's OUT names); None for a file converted alone or another one."""
    attrs = read_metadata(data_path)[1]
    modalities = list((attrs.get("description") or {}).get("modalities", ["joint"]))
    return modalities if len(modalities) > 1 and modalities[0] == modality_of(attrs) else None


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
    for key, column in columns.items():
        if column.dtype.kind == "S":
            columns[key] = np.char.decode(column, "utf-8")
    attrs: dict[str, object] = {}
    for key, value in raw_attrs.items():
        if key in _JSON_ATTRS:
            value = json.loads(value)
        elif isinstance(value, np.integer):
            value = int(value)
        attrs[key] = value
    try:
        datasets.register_attrs(attrs)  # so that training and evaluation find this file's own dataset by its name
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return columns, attrs
