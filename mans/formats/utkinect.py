"""UT-Kinect-Action3D (Xia, Chen, Aggarwal 2012) as distributed: joint files and action labels.

The folder holds `joints/joints_sSS_eEE.txt` (one line per skeleton sample: the camera's frame number,
then 20 joints x (x y z) in metres, Kinect v1 order) and `actionLabel.txt` (per sequence a line
`sSS_eEE`, then ten lines `action: start end`, inclusive frame numbers, `NaN NaN` where the action has
no segment). A sample is one action segment: every line whose frame number lies in [start, end], a
repeated frame number keeping its first line. Samples are named `sSS_eEE_<action>`.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
import pathlib
import re
from collections.abc import Iterator

import numpy as np

from mans.formats.base import Entry, Listing, RawFormat, Skeleton

ACTIONS = (
    "walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull", "waveHands", "clapHands",
)
NUM_JOINTS = 20
LABEL_FILE = "actionLabel.txt"
JOINTS_DIR = "joints"
_SEQUENCE = re.compile(r"^s(\d{2})_e(\d{2})$")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One labelled action segment of a recorded sequence."""

    sequence: str  # "s01_e01"
    subject: int
    episode: int
    label: int  # 0-based index into ACTIONS
    start: int  # inclusive frame numbers
    end: int

    @property
    def name(self) -> str:
        return f"{self.sequence}_{ACTIONS[self.label]}"


@dataclasses.dataclass(frozen=True)
class Sample:
    """One segment cut out of its recording, as a one-body Skeleton."""

    segment: Segment
    skeleton: Skeleton


def read_action_labels(path: str | os.PathLike) -> tuple[list[Segment], list[tuple[str, str]]]:
    """Parse actionLabel.txt.

    Returns:
        (segments, skipped): the usable segments in file order, and (name, reason) for entries with no
        segment (`NaN NaN`).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: UT-Kinect label file not found (expected {LABEL_FILE} in the folder)")
    segments: list[Segment] = []
    skipped: list[tuple[str, str]] = []
    sequence = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _SEQUENCE.match(line)
        if match:
            sequence = (line, int(match.group(1)), int(match.group(2)))
            continue
        if sequence is None:
            raise ValueError(f"{path}, line {number}: expected a sequence name like s01_e01, found {line!r}")
        segment = _parse_label_line(path, number, line, sequence)
        if segment is None:
            skipped.append((f"{sequence[0]}_{line.split(':')[0].strip()}", "no-segment"))
        else:
            segments.append(segment)
    if not segments:
        raise ValueError(f"{path}: no labelled segment found")
    return segments, skipped


def _parse_label_line(path: pathlib.Path, number: int, line: str, sequence: tuple[str, int, int]):
    action, _, rest = line.partition(":")
    action = action.strip()
    if action not in ACTIONS:
        raise ValueError(f"{path}, line {number}: expected one of {', '.join(ACTIONS)}, found {action!r}")
    fields = rest.split()
    if len(fields) != 2:
        raise ValueError(f"{path}, line {number}: expected 'action: start end', found {line!r}")
    try:
        start, end = (float(field) for field in fields)
    except ValueError:
        raise ValueError(f"{path}, line {number}: expected two frame numbers, found {rest.strip()!r}") from None
    if math.isnan(start) or math.isnan(end):
        return None
    name, subject, episode = sequence
    return Segment(name, subject, episode, ACTIONS.index(action), int(start), int(end))


def read_joints(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one joints_sSS_eEE.txt file.

    Returns:
        frame_numbers: (N,) int64 in file order; coords: (N, 20, 3) float32 x y z in metres.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: joints file not found")
    text = path.read_text()
    if not text.strip():
        raise ValueError(f"{path}: the sequence has no joints (empty file)")
    try:
        table = np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: expected numeric lines of 61 numbers ({error})") from None
    if table.shape[1] != 1 + 3 * NUM_JOINTS:
        raise ValueError(
            f"{path}: expected 61 numbers per line (frame number + 20 joints x 3), found {table.shape[1]}"
        )
    if not np.isfinite(table).all():
        raise ValueError(f"{path}: NaN or infinite values in the joint coordinates")
    coords = table[:, 1:].reshape(-1, NUM_JOINTS, 3).astype(np.float32)  # (N, 20, 3)
    return table[:, 0].astype(np.int64), coords


def cut_segment(frame_numbers: np.ndarray, coords: np.ndarray, segment: Segment, source: str = "") -> Skeleton:
    """The lines of a recording whose frame number lies in [start, end]; a repeated number keeps its first.
    The Skeleton's `times` are those frame numbers: the camera skips 1 to 9 frames between two samples."""
    start, end = sorted((segment.start, segment.end))  # an end may come out of order
    inside = np.flatnonzero((frame_numbers >= start) & (frame_numbers <= end))
    if inside.size == 0:
        recorded = f"{frame_numbers.min()}-{frame_numbers.max()}" if frame_numbers.size else "none"
        raise ValueError(
            f"{source or segment.sequence}: label {segment.name} [{segment.start}, {segment.end}] lies outside "
            f"the recording (frames {recorded})"
        )
    _, first = np.unique(frame_numbers[inside], return_index=True)
    keep = inside[np.sort(first)]  # first line of each frame number, in file order
    frames = coords[keep][:, None]  # (F, 1, 20, 3): one body
    count = len(keep)
    return Skeleton(
        coords=np.ascontiguousarray(frames, dtype=np.float32),
        body_counts=np.ones(count, dtype=np.int32),
        body_ids=np.ones((count, 1), dtype=np.uint64),
        tracking=np.full((count, 1, NUM_JOINTS), 2, dtype=np.int8),
        times=frame_numbers[keep].astype(np.float64),
    )


def iter_samples(folder: str | os.PathLike) -> Iterator[Sample]:
    """Every labelled segment of a UT-Kinect folder, sequences in label-file order."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: UT-Kinect folder not found")
    segments, _ = read_action_labels(folder / LABEL_FILE)
    loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for segment in segments:
        if segment.sequence not in loaded:
            loaded.clear()  # label files list a sequence's segments together: keep one recording in memory
            loaded[segment.sequence] = read_joints(joints_path(folder, segment.sequence))
        frame_numbers, coords = loaded[segment.sequence]
        source = str(joints_path(folder, segment.sequence))
        yield Sample(segment, cut_segment(frame_numbers, coords, segment, source))


def joints_path(folder: pathlib.Path, sequence: str) -> pathlib.Path:
    return folder / JOINTS_DIR / f"joints_{sequence}.txt"


# ---------------------------------------------------------------- the format


def _list_utkinect(folder, spec, options) -> Listing:
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: UT-Kinect folder not found")
    segments, no_segment = read_action_labels(folder / LABEL_FILE)
    for sequence in dict.fromkeys(s.sequence for s in segments):
        path = joints_path(folder, sequence)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: joints file not found")
    skips = [(name, reason, "no frame range in actionLabel.txt (NaN NaN)") for name, reason in no_segment]
    entries = [
        Entry(s.name, {"label": s.label, "setup": 1, "camera": 1, "performer": s.subject, "replication": s.episode},
              (str(joints_path(folder, s.sequence)), s))
        for s in segments
    ]
    return Listing(entries, skips, len(segments) + len(no_segment))


@functools.lru_cache(maxsize=1)
def _utkinect_joints(path: str) -> tuple[np.ndarray, np.ndarray]:
    return read_joints(path)  # label files list a sequence's segments together: one file in memory


def _load_utkinect(source: tuple[str, Segment]) -> Skeleton:
    path, segment = source
    frame_numbers, coords = _utkinect_joints(path)
    return cut_segment(frame_numbers, coords, segment, path)


def _read_utkinect(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
    """A joints_sSS_eEE.txt file: one recording per labelled action when the dataset's actionLabel.txt lies
    in the folder above joints/, else the whole file as one recording."""
    frame_numbers, coords = read_joints(path)
    sequence = path.stem.removeprefix("joints_")
    labels = path.parent.parent / LABEL_FILE
    if path.parent.name == JOINTS_DIR and labels.is_file():
        segments = [s for s in read_action_labels(labels)[0] if s.sequence == sequence]
        if segments:
            return [(s.name, cut_segment(frame_numbers, coords, s, str(path))) for s in segments]
    whole = Segment(sequence, 0, 0, 0, int(frame_numbers.min()), int(frame_numbers.max()))
    return [(sequence, cut_segment(frame_numbers, coords, whole, str(path)))]


FORMAT = RawFormat(
    name="utkinect", aliases=("utkinect-joints",), describes="UT-Kinect-Action3D joint files (joints_sSS_eEE.txt)",
    list=_list_utkinect, load=_load_utkinect, read=_read_utkinect, unit="segment",
    matches=lambda path: path.name.startswith("joints_") and path.suffix == ".txt", dataset="utkinect",
)
