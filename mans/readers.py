"""Readers: what the one conversion route (`mans.storage.convert_folder`) needs from a folder of recordings.

A reader lists a folder's sequences as `Entry`s (name, stored columns, a source) and loads one source into a
`Skeleton`; `storage` preprocesses and writes every dataset alike. A description's `reader` key names one:

    folder         the documented format (README "Your own data"): one .npy array per sequence, (frames, joints,
                   channels) or (frames, bodies, joints, channels), and a labels table (CSV: sequence, action,
                   subject and the description's other grouping columns)
    ntu-skeleton   NTU RGB+D 60 / 120 `.skeleton` files (`mans.skeleton_io`)
    utkinect       UT-Kinect-Action3D: joints/ and actionLabel.txt (`mans.utkinect`)
    msr-action3d   MSR Action3D `aAA_sSS_eEE_skeleton3D.txt` files (`mans.msr_action3d`)
    utd-mhad       UTD-MHAD `aA_sS_tT_skeleton.mat` files (`mans.utd_mhad`)

Adding a raw format is a reader here (a `Reader` in `READERS`); a dataset in the documented format needs none.
Numpy only. `load` functions are module-level so that worker processes can receive them.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import pathlib
from collections.abc import Callable

import numpy as np

from mans import msr_action3d, skeleton_io, utd_mhad, utkinect
from mans.preprocess import SampleSkipped
from mans.skeleton_io import Skeleton, parse_sample_name

MISSING_REASON = "missing-list"  # skipped on request: not an error under strict=True
STORED_INT16 = ("label", "setup", "camera", "performer", "replication")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One sequence of a folder: its name, its stored columns (label 0-based, performer, ...) and its source."""

    name: str
    columns: dict[str, int | str]
    source: object  # handed to the reader's `load`; picklable


@dataclasses.dataclass
class Listing:
    """A folder's sequences, the ones skipped before reading (name, reason, message) and the files counted."""

    entries: list[Entry]
    skips: list[tuple[str, str, str]]
    files: int
    notes: list[str] = dataclasses.field(default_factory=list)  # things the user should know, one line each


@dataclasses.dataclass(frozen=True)
class Reader:
    """A raw format: `list(folder, spec, options)` -> Listing; `load(source)` -> Skeleton.

    unit: what the progress bar counts. whole_dataset: the description covers a full dataset whose subsets
    are fine (a split may select nothing in a subset); False: the folder is the dataset, so a split that
    selects nothing is refused.
    """

    list: Callable[..., Listing]
    load: Callable[[object], Skeleton]
    unit: str = "file"
    whole_dataset: bool = True


# ---------------------------------------------------------------- NTU RGB+D .skeleton files


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


def list_skeleton_files(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The folder's `.skeleton` files in name order; errors name the folder."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"skeleton folder {folder} not found (expected a folder of .skeleton files)")
    paths = sorted(folder.glob("*.skeleton"), key=lambda p: p.name)
    if not paths:
        raise ValueError(f"expected .skeleton files in {folder}, found none")
    return paths


def _list_ntu(folder, spec, options) -> Listing:
    paths = list_skeleton_files(folder)[: options.get("limit")]
    missing = _read_missing_list(options.get("missing_list"))
    skips: list[tuple[str, str, str]] = []
    entries: list[Entry] = []
    for path in paths:
        name = path.name.removesuffix(".skeleton")
        if name in missing:
            skips.append((name, MISSING_REASON, "listed in the missing-sample list"))
            continue
        try:
            sample = parse_sample_name(path)
        except ValueError as error:
            skips.append((name, getattr(error, "reason", "bad-name"), str(error)))
            continue
        if str(sample) != name:  # e.g. "S001C001P001R001A001.copy": would collide with the real one
            skips.append((name, "bad-name", f"expected a name like {sample}.skeleton, found {path.name}"))
            continue
        columns = {key: getattr(sample, key) for key in STORED_INT16}
        entries.append(Entry(name, columns, str(path)))
    if spec is not None:
        too_large = [e.name for e in entries if e.columns["label"] >= spec.num_classes]
        if too_large:
            raise ValueError(
                f"expected actions 1-{spec.num_classes} for {spec.name}, found {too_large[0]} "
                f"and {len(too_large) - 1} more with larger action numbers (use --dataset ntu120)"
            )
    return Listing(entries, skips, len(paths))


def detect_ntu_dataset(folder: str | os.PathLike, limit: int | None = None) -> str:
    """"ntu120" when any file name of the folder has an action number > 60, else "ntu60"."""
    actions = []
    for path in list_skeleton_files(folder)[:limit]:
        try:
            actions.append(parse_sample_name(path).action)
        except ValueError:
            continue
    return "ntu120" if any(a > 60 for a in actions) else "ntu60"


def _load_ntu(source: str) -> Skeleton:
    return skeleton_io.read_skeleton(source)


# ---------------------------------------------------------------- UT-Kinect-Action3D


def _list_utkinect(folder, spec, options) -> Listing:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: UT-Kinect folder not found")
    segments, no_segment = utkinect.read_action_labels(folder / utkinect.LABEL_FILE)
    for sequence in dict.fromkeys(s.sequence for s in segments):
        path = utkinect.joints_path(folder, sequence)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: joints file not found")
    skips = [(name, reason, "no frame range in actionLabel.txt (NaN NaN)") for name, reason in no_segment]
    entries = [
        Entry(s.name, {"label": s.label, "setup": 1, "camera": 1, "performer": s.subject, "replication": s.episode},
              (str(utkinect.joints_path(folder, s.sequence)), s))
        for s in segments
    ]
    return Listing(entries, skips, len(segments) + len(no_segment))


@functools.lru_cache(maxsize=1)
def _utkinect_joints(path: str) -> tuple[np.ndarray, np.ndarray]:
    return utkinect.read_joints(path)  # label files list a sequence's segments together: one file in memory


def _load_utkinect(source: tuple[str, utkinect.Segment]) -> Skeleton:
    path, segment = source
    frame_numbers, coords = _utkinect_joints(path)
    return utkinect.cut_segment(frame_numbers, coords, segment, path)


# ---------------------------------------------------------------- MSR Action3D and UTD-MHAD


def _list_named_files(dataset_module, folder, spec, options) -> Listing:
    """A folder of one file per recording whose name gives its action, subject and repetition (`dataset_module`:
    `mans.msr_action3d` or `mans.utd_mhad`)."""
    entries = []
    for path, recording in dataset_module.iter_recordings(folder):
        columns = {"label": recording.action - 1, "setup": 1, "camera": 1, "performer": recording.subject,
                   "replication": recording.replication}
        entries.append(Entry(recording.name, columns, str(path)))
    return Listing(entries, [], len(entries))


# ---------------------------------------------------------------- the documented folder format


def _labels_table(folder: pathlib.Path, desc) -> tuple[pathlib.Path, list[dict[str, str]]]:
    path = folder / desc.labels
    if not path.is_file():
        raise FileNotFoundError(f"{path}: labels table not found (the description's 'labels', relative to "
                                f"--skeletons {folder})")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or ()]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    needed = ["sequence", "action", *desc.columns]
    absent = [column for column in needed if column not in header]
    if absent:
        raise ValueError(f"{path}: expected the column(s) {', '.join(absent)} (the description's columns), "
                         f"found {', '.join(header) or 'no header'}")
    if not rows:
        raise ValueError(f"{path}: no sequence listed")
    return path, rows


def _unlisted_columns(path: pathlib.Path, rows: list[dict[str, str]], desc) -> list[str]:
    """A note for the labels table's columns that the description does not list (read by nothing)."""
    unlisted = [column for column in rows[0] if column not in ("sequence", "action", *desc.columns)]
    if not unlisted:
        return []
    return [f"note: {path}: column(s) {', '.join(unlisted)} are not among the description's columns "
            f"({', '.join(desc.columns)}) and are ignored; list them under \"columns\" to store them"]


def _group_value(path: pathlib.Path, line: int, column: str, text: str) -> int | str:
    if not text:
        raise ValueError(f"{path}, line {line}: column {column!r} is empty")
    try:
        return int(text)
    except ValueError:
        if column in ("subject", "setup", "camera", "replication"):
            raise ValueError(f"{path}, line {line}: expected an integer {column}, found {text!r}") from None
        return text


def _action_label(path: pathlib.Path, line: int, text: str, actions: list[str]) -> int:
    if text in actions:
        return actions.index(text)
    if text.isdigit() and 1 <= int(text) <= len(actions):
        return int(text) - 1
    raise ValueError(f"{path}, line {line}: action {text!r} is neither one of the description's actions nor a "
                     f"number 1-{len(actions)}")


def _list_folder(folder, spec, options) -> Listing:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: skeleton folder not found")
    desc = spec.description
    path, rows = _labels_table(folder, desc)
    entries, skips, seen = [], [], set()
    shape = (desc.bodies, len(desc.joints), desc.coordinates)
    for line, row in enumerate(rows, start=2):
        name = row["sequence"].removesuffix(".npy")
        if not name or "/" in name or name in seen:
            raise ValueError(f"{path}, line {line}: expected a new sequence name, found {row['sequence']!r}")
        seen.add(name)
        columns: dict[str, int | str] = {"label": _action_label(path, line, row["action"], desc.actions),
                                         "setup": 1, "camera": 1, "replication": 1}
        for column in desc.columns:
            columns["performer" if column == "subject" else column] = _group_value(path, line, column, row[column])
        array = folder / f"{name}.npy"
        if not array.is_file():
            skips.append((name, "no-file", f"{path}, line {line}: {array.name} not found in {folder}"))
            continue
        entries.append(Entry(name, columns, (str(array), shape)))
    entries.sort(key=lambda entry: entry.name)  # stored in ascending name order, as NTU's
    return Listing(entries, skips, len(rows), _unlisted_columns(path, rows, desc))


def load_sequence(path: str, shape: tuple[int, int, str]) -> Skeleton:
    """One .npy sequence as a Skeleton; SampleSkipped with the reason of a sequence that cannot be used.

    shape: (at most this many bodies, joints, coordinates "xyz" | "xy" | "xy+score") of the description."""
    bodies, joints, coordinates = shape
    channels = 2 if coordinates == "xy" else 3
    name = os.path.basename(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SampleSkipped("unreadable", f"{name}: not a numpy array file ({error})") from None
    shape_read = array.shape  # the file's own shape, for the messages
    if array.ndim == 3:
        array = array[:, None]  # (F, 1, J, C)
    if array.ndim != 4 or not np.issubdtype(array.dtype, np.number):
        raise SampleSkipped("shape", f"{name}: expected a number array (frames, joints, channels) or (frames, "
                            f"bodies, joints, channels), found {array.dtype} of shape {shape_read}")
    if len(array) == 0:
        raise SampleSkipped("empty", f"{name}: no frame (shape {shape_read})")
    if array.shape[2] != joints:
        raise SampleSkipped("joint-count", f"{name}: expected {joints} joints (the description's), found "
                            f"{array.shape[2]} (shape {shape_read})")
    if array.shape[3] != channels:
        raise SampleSkipped("channel-count", f"{name}: expected {channels} channels (the description's coordinates),"
                            f" found {array.shape[3]} (shape {shape_read})")
    if array.shape[1] > bodies:
        raise SampleSkipped("body-count", f"{name}: expected at most {bodies} bodies (the description's), found "
                            f"{array.shape[1]}")
    if not np.isfinite(array).all():
        raise SampleSkipped("non-finite", f"{name}: NaN or infinite values")
    return skeleton_from_array(array, coordinates)


def skeleton_from_array(array: np.ndarray, coordinates: str = "xyz") -> Skeleton:
    """A (F, B, J, C) array as a Skeleton, the bodies present in a frame listed first.

    "xyz": a body is present where any joint is non-zero. "xy": a score channel is added, 1 where a joint is
    not at (0, 0), else 0. "xy", "xy+score": a body is present where any score is > 0.
    """
    array = np.asarray(array, np.float32)
    if coordinates == "xy":
        seen = np.any(array != 0, axis=-1, keepdims=True)  # (F, B, J, 1)
        array = np.concatenate([array, seen.astype(np.float32)], axis=-1)  # (F, B, J, 3): x, y, score
    present = np.any(array != 0, axis=(2, 3)) if coordinates == "xyz" else np.any(array[..., 2] > 0, axis=2)
    return skeleton_from_frames([array[t][present[t]] for t in range(len(array))], array.shape[2])


def skeleton_from_frames(frames, num_joints: int) -> Skeleton:
    """A Skeleton of frames given as (bodies, J, 3) arrays; body k of a frame gets bodyID k + 1.

    Without Kinect bodyIDs the slot is the identity: the faithful mode takes bodies by slot anyway, and the
    denoised mode then tracks body k as one person.
    """
    counts = np.array([len(frame) for frame in frames], np.int32)
    width = max(1, int(counts.max(initial=0)))
    coords = np.zeros((len(frames), width, num_joints, 3), np.float32)
    for t, frame in enumerate(frames):
        coords[t, : len(frame)] = frame
    listed = np.arange(width) < counts[:, None]  # (F, B)
    body_ids = np.where(listed, np.arange(1, width + 1, dtype=np.uint64), np.uint64(0))
    tracking = np.where(listed[..., None], 2, 0).astype(np.int8).repeat(num_joints, axis=2)
    return Skeleton(coords=coords, body_counts=counts, body_ids=body_ids, tracking=tracking)


def _load_folder(source: tuple[str, tuple[int, int, str]]) -> Skeleton:
    return load_sequence(*source)


READERS: dict[str, Reader] = {
    "ntu-skeleton": Reader(_list_ntu, _load_ntu, "file"),
    "utkinect": Reader(_list_utkinect, _load_utkinect, "segment"),
    "msr-action3d": Reader(functools.partial(_list_named_files, msr_action3d), msr_action3d.read_recording, "file"),
    "utd-mhad": Reader(functools.partial(_list_named_files, utd_mhad), utd_mhad.read_recording, "file"),
    "folder": Reader(_list_folder, _load_folder, "sequence", whole_dataset=False),
}


def reader_named(name: str) -> Reader:
    if name not in READERS:
        raise ValueError(f"expected a reader among {sorted(READERS)}, found {name!r}")
    return READERS[name]
