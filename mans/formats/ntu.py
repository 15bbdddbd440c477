"""NTU RGB+D 60 / 120 `.skeleton` files (Kinect v2 text format, docs/paper.md): `read_skeleton` reads one into
numpy arrays, `FORMAT` lists a folder of them for conversion (the missing-sample list, action numbers checked).

The format is deterministic: a frame count; per frame a body count; per body a 10-field info line,
a joint-count line (25) and 25 joint lines of 12 fields. `read_skeleton` walks only the header
lines in Python and hands all joint lines to one C-level `pandas.read_csv` call. Any line that the
fast path cannot vouch for sends the file through a line-by-line checker, which either accepts it
(extra whitespace, tabs) or raises `SkeletonFormatError` naming the file and line.

Parser choice, measured on one core of a shared 2-core x86_64 machine (numpy 2.4, pandas 3.1):
- one quiet-ish run on a 425 KB file (100 frames, 1-2 bodies), wall clock: np.fromstring on the
  joint lines 133 MB/s (3.2 ms), np.loadtxt on the list of joint lines 169 MB/s (2.5 ms), bytes ->
  numpy 'S' array -> float64 ~75 MB/s (5.7 ms), pandas.read_csv on the whole file with ragged rows
  (sep=" ", names=range(12)) 68 MB/s (6.2 ms), the same with sep=r"\\s+" 145 MB/s (2.9 ms),
  pandas.read_csv on the joined joint lines, all 12 columns 230 MB/s (1.8 ms), with
  usecols=[0, 1, 2, 11] 360 MB/s (1.2 ms); bytes.count(b" ") 0.36 ms where numpy takes 0.02 ms.
- `python bench/bench_parse.py --approaches` (500 synthetic files of 548 KB / 172 frames on
  average, CPU time, machine load ~5.5): read_skeleton 180 MB/s (3.0 ms/file) with all checks
  and assembly; parsing alone: pandas.read_csv all 12 columns 152 MB/s, whole file sep=r"\\s+"
  155 MB/s, np.loadtxt 132 MB/s, np.fromstring 95 MB/s, 'S' array -> float64 52 MB/s. With
  --frames 40 160 (328 KB / 101 frames): read_skeleton 2.0 ms/file, 500 files/s per core.
The chosen path: usecols, plus byte-level checks (allowed characters, 11 spaces per line) that make
up for the 8 unconverted columns; a malformed number made only of the characters 0-9 . - + e E
(such as "1.2.3") is caught in x, y, z and trackingState but not in those 8 columns.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import pathlib
import re

import numpy as np
import pandas as pd

from mans.formats.base import MISSING_REASON, Entry, Listing, RawFormat, Skeleton

NUM_JOINTS = 25
JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState
INFO_FIELDS = 10  # bodyID clippedEdges 4 hand fields isRestricted leanX leanY trackingState
REASONS = (  # SkeletonFormatError.reason: the keys of the skip report
    "truncated",  # the file ends before the frames, bodies or joints its headers promise
    "non-numeric",  # a count, body ID or field that is not a number (or a negative count)
    "field-count",  # a body info line without 10 fields or a joint line without 12
    "joint-count",  # a joint count other than 25
    "non-finite",  # NaN or infinity in x, y, z or trackingState
    "zero-frames",  # a frame count of 0
    "no-body",  # frames, but no body in any of them
    "trailing-data",  # more lines after the last frame
    "bad-name",  # a file name that is not SsssCcccPpppRrrrAaaa
)
_NUMBER_BYTES = b"0123456789.-+eE"
_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_MAX_SHOWN = 40  # characters of an offending token quoted in an error message


class SkeletonFormatError(ValueError):
    """A malformed `.skeleton` file or sample name; `.reason` is a short stable key (see REASONS)."""

    def __init__(self, file: str, line: int | None, message: str, reason: str):
        where = f"{file}, line {line}" if line is not None else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class SampleName:
    """The fields of an NTU sample name `SsssCcccPpppRrrrAaaa`, 1-based as written."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        """The 0-based class index."""
        return self.action - 1

    def __str__(self) -> str:
        return (
            f"S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}"
            f"R{self.replication:03d}A{self.action:03d}"
        )


def parse_sample_name(name_or_path: str | os.PathLike) -> SampleName:
    """Parse `SsssCcccPpppRrrrAaaa[.skeleton]`; SkeletonFormatError (a ValueError) "bad-name" if not."""
    base = os.path.basename(os.fspath(name_or_path))
    stem = base.split(".", 1)[0]
    match = _NAME_RE.fullmatch(stem)
    if match is None:
        raise SkeletonFormatError(
            base, None, f"expected a name like S001C002P003R001A060, found {stem!r}", "bad-name"
        )
    return SampleName(*(int(group) for group in match.groups()))


@dataclasses.dataclass
class _Layout:
    """Where the joint blocks are: filled by the header walk."""

    body_counts: list[int]
    joint_starts: list[int]  # 0-based index of the first joint line of each body
    body_ids: list[int]


def _shown(token: bytes) -> str:
    text = token.decode("ascii", errors="replace")
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...")


class _Reader:
    """Header walk and joint parsing for one file's contents; lines are addressed by 0-based index."""

    def __init__(self, file: str, data: bytes):
        data = data.rstrip()  # trailing blank lines and whitespace
        if b"\r" in data and b"\n" not in data:  # classic Mac line ends
            data = data.replace(b"\r", b"\n")
        self.file = file
        self.data = data
        # one C pass for all line ends instead of splitting into thousands of bytes objects
        self.ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n")).tolist()
        if data:
            self.ends.append(len(data))  # the last line has no line end after rstrip
        self.num_lines = len(self.ends)

    def text(self, index: int) -> bytes:
        """Line `index`, with a trailing CR if the file has CRLF line ends."""
        return self.data[self.ends[index - 1] + 1 if index else 0 : self.ends[index]]

    def block(self, first: int, count: int) -> bytes:
        """Lines first .. first + count - 1 as one slice, inner line ends included."""
        return self.data[self.ends[first - 1] + 1 if first else 0 : self.ends[first + count - 1]]

    def fail(self, index: int, message: str, reason: str):
        raise SkeletonFormatError(self.file, index + 1, message, reason)

    def line(self, index: int, what: str) -> bytes:
        if index >= self.num_lines:
            self.fail(index, f"expected {what}, found end of file", "truncated")
        return self.text(index)

    def count(self, index: int, what: str) -> int:
        text = self.line(index, what)
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            found = _shown(text.strip())
            self.fail(index, f"expected {what} (an integer >= 0), found {found}", "non-numeric")
        return value

    def body_id(self, index: int) -> int:
        fields = self.line(index, "a body info line").split()
        if len(fields) != INFO_FIELDS:
            self.fail(index, f"expected {INFO_FIELDS} body info fields, found {len(fields)}", "field-count")
        try:
            value = int(fields[0])
        except ValueError:
            value = -1
        if not 0 <= value < 2**64:
            self.fail(index, f"expected a 64-bit body ID, found {_shown(fields[0])}", "non-numeric")
        return value

    def walk(self) -> _Layout:
        num_frames = self.count(0, "the frame count")
        if num_frames == 0:
            self.fail(0, "expected at least 1 frame, found 0", "zero-frames")
        layout = _Layout([], [], [])
        index = 1
        for _ in range(num_frames):
            bodies = self.count(index, "a body count")
            layout.body_counts.append(bodies)
            index += 1
            for _ in range(bodies):
                layout.body_ids.append(self.body_id(index))
                joints = self.count(index + 1, "a joint count")
                if joints != NUM_JOINTS:
                    self.fail(index + 1, f"expected {NUM_JOINTS} joints, found {joints}", "joint-count")
                layout.joint_starts.append(index + 2)
                index += 2 + NUM_JOINTS
                if index > self.num_lines:
                    message = f"expected {NUM_JOINTS} joint lines, found end of file"
                    self.fail(self.num_lines, message, "truncated")
        if index < self.num_lines:
            message = f"expected end of file after {num_frames} frames, found more lines"
            self.fail(index, message, "trailing-data")
        if not layout.joint_starts:
            message = f"expected a body in at least one frame, found none in {num_frames} frames"
            self.fail(0, message, "no-body")
        return layout

    def check_info_lines(self, layout: _Layout) -> None:
        """Check that every body info field is a number (the fields other than bodyID are not kept)."""
        starts = layout.joint_starts
        infos = b" ".join(self.text(start - 2) for start in starts)
        if not infos.translate(None, _NUMBER_BYTES + b" \t\r"):
            return
        for start in starts:
            for field in self.text(start - 2).split()[1:]:
                try:
                    float(field)
                except ValueError:
                    self.fail(start - 2, f"expected a number, found {_shown(field)}", "non-numeric")

    def joints_fast(self, starts: list[int]) -> np.ndarray | None:
        """(bodies * 25, 4) float64 of x y z trackingState, or None when the block needs the careful path."""
        rows = len(starts) * NUM_JOINTS
        text = b"\n".join([self.block(start, NUM_JOINTS) for start in starts])
        # usecols leaves 8 columns unconverted: make up for it by allowing only number characters
        # and exactly 11 single spaces per line (a short line leaves NaN in column 11, caught below).
        if text.translate(None, _NUMBER_BYTES + b" \r\n"):
            return None
        if _count_spaces(text) != (JOINT_FIELDS - 1) * rows:
            text = _strip_line_ends(text)  # trailing spaces cost a second pass, not the careful path
            if _count_spaces(text) != (JOINT_FIELDS - 1) * rows:
                return None
        try:
            frame = pd.read_csv(
                io.BytesIO(text), sep=" ", header=None, usecols=[0, 1, 2, JOINT_FIELDS - 1], engine="c"
            )
            values = frame.to_numpy(np.float64)
        except (ValueError, pd.errors.ParserError):
            return None
        if values.shape != (rows, 4) or not np.isfinite(values).all():
            return None
        return values

    def joints_checked(self, starts: list[int]) -> np.ndarray:
        """The careful path: line by line, tolerant of extra whitespace, precise about errors."""
        values = np.empty((len(starts) * NUM_JOINTS, 4), np.float64)
        row = 0
        for start in starts:
            for index in range(start, start + NUM_JOINTS):
                fields = self.text(index).split()
                if len(fields) != JOINT_FIELDS:
                    message = f"expected {JOINT_FIELDS} joint fields, found {len(fields)}"
                    self.fail(index, message, "field-count")
                numbers = [self.number(index, field) for field in fields]
                kept = numbers[:3] + numbers[-1:]
                if not all(math.isfinite(v) for v in kept):
                    found = " ".join(f"{v:g}" for v in kept)
                    self.fail(index, f"expected finite x y z and trackingState, found {found}", "non-finite")
                values[row] = kept
                row += 1
        return values

    def number(self, index: int, field: bytes) -> float:
        try:
            return float(field)
        except ValueError:
            self.fail(index, f"expected a number, found {_shown(field)}", "non-numeric")


def _count_spaces(text: bytes) -> int:
    return int(np.count_nonzero(np.frombuffer(text, np.uint8) == ord(" ")))  # 15x faster than bytes.count


def _strip_line_ends(text: bytes) -> bytes:
    """Drop spaces at the end of every line (before CR or LF)."""
    for end in (b"\r", b"\n"):
        while b" " + end in text:
            text = text.replace(b" " + end, end)
    return text.rstrip(b" ")


def _assemble(layout: _Layout, values: np.ndarray) -> Skeleton:
    counts = np.asarray(layout.body_counts, np.int32)
    frames, width = len(counts), int(counts.max())
    frame_of_body = np.repeat(np.arange(frames), counts)  # (bodies,)
    slot = np.arange(len(frame_of_body)) - np.repeat(np.cumsum(counts) - counts, counts)
    joints = values.reshape(-1, NUM_JOINTS, 4)  # (bodies, 25, x y z state)
    coords = np.zeros((frames, width, NUM_JOINTS, 3), np.float32)
    coords[frame_of_body, slot] = joints[..., :3]
    tracking = np.zeros((frames, width, NUM_JOINTS), np.int8)
    tracking[frame_of_body, slot] = joints[..., 3]
    body_ids = np.zeros((frames, width), np.uint64)
    body_ids[frame_of_body, slot] = np.array(layout.body_ids, np.uint64)
    return Skeleton(coords=coords, body_counts=counts, body_ids=body_ids, tracking=tracking)


def parse_skeleton_bytes(data: bytes, file: str = "<bytes>") -> Skeleton:
    """Parse the contents of a `.skeleton` file; `file` names it in error messages."""
    reader = _Reader(file, data)
    layout = reader.walk()
    reader.check_info_lines(layout)
    values = reader.joints_fast(layout.joint_starts)
    if values is None:
        values = reader.joints_checked(layout.joint_starts)
    return _assemble(layout, values)


def read_skeleton(path: str | os.PathLike) -> Skeleton:
    """Read one `.skeleton` file; raises SkeletonFormatError (a ValueError) naming the file and line."""
    path = pathlib.Path(path)
    return parse_skeleton_bytes(path.read_bytes(), path.name)


# ---------------------------------------------------------------- a folder of .skeleton files, one file

STORED_INT16 = ("label", "setup", "camera", "performer", "replication")


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


def detect_dataset(folder: str | os.PathLike, limit: int | None = None) -> str:
    """"ntu120" when any file name of the folder has an action number > 60, else "ntu60"."""
    actions = []
    for path in list_skeleton_files(folder)[:limit]:
        try:
            actions.append(parse_sample_name(path).action)
        except ValueError:
            continue
    return "ntu120" if any(a > 60 for a in actions) else "ntu60"


def _load_ntu(source: str) -> Skeleton:
    return read_skeleton(source)


def _read_ntu(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
    return [(path.name.split(".", 1)[0], read_skeleton(path))]


FORMAT = RawFormat(
    name="ntu-skeleton", describes="NTU RGB+D .skeleton files", list=_list_ntu, load=_load_ntu, read=_read_ntu,
    matches=lambda path: path.suffix == ".skeleton", dataset="ntu60",
)
