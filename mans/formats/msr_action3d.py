"""MSR Action3D (Li, Zhang, Liu 2010) as distributed: one `aAA_sSS_eEE_skeleton3D.txt` file per recording.

A file holds 20 lines per frame, one joint a line, `x y z c` (camera-space metres; `c` is a 0/1 tracking
flag), frames in order, no header. The dataset's body model orders the joints its own way (1, 2 shoulders;
3 neck; 4 spine; 5, 6 hips; 7 hip centre; 8, 9 elbows; 10, 11 wrists; 12, 13 hands; 14, 15 knees; 16, 17
ankles; 18, 19 feet; 20 head; in each pair the odd joint is the "right" one of the Lie-group body model).
The reader puts them into Kinect v1's order (`KINECT_FROM_MSR`), so that the view normalisation, the sign
fixes and the augmentations treat them exactly as UT-Kinect's. A frame whose 20 joints are all zero (the
sensor lost the body) is dropped; a file with no other frame is skipped ("all-zero").
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import re
from collections.abc import Iterator

import numpy as np

from mans.formats.base import RawFormat, SampleSkipped, Skeleton, list_named_files

ACTIONS = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw", "draw x",
    "draw tick", "draw circle", "hand clap", "two hand wave", "side-boxing", "bend", "forward kick", "side kick",
    "jogging", "tennis swing", "tennis serve", "golf swing", "pick up & throw",
)
NUM_JOINTS = 20
FILE_PATTERN = "a??_s??_e??_skeleton3D.txt"
_NAME = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_skeleton3D\.txt$")
# Kinect v1 joint k is MSR joint KINECT_FROM_MSR[k] (0-based): hip centre, spine, shoulder centre, head,
# left shoulder / elbow / wrist / hand, right shoulder / elbow / wrist / hand, left hip / knee / ankle / foot,
# right hip / knee / ankle / foot; MSR's odd ("right") joints go to Kinect's right side.
KINECT_FROM_MSR = (6, 3, 2, 19, 1, 8, 10, 12, 0, 7, 9, 11, 5, 14, 16, 18, 4, 13, 15, 17)


@dataclasses.dataclass(frozen=True)
class Recording:
    """One MSR Action3D file's identity, from its name."""

    action: int  # 1-based
    subject: int
    episode: int

    @property
    def replication(self) -> int:
        """The stored replication column: the episode."""
        return self.episode

    @property
    def name(self) -> str:
        return f"a{self.action:02d}_s{self.subject:02d}_e{self.episode:02d}"


def parse_name(path: str | os.PathLike) -> Recording:
    """The action, subject and episode of `aAA_sSS_eEE_skeleton3D.txt`; ValueError for another name."""
    name = pathlib.Path(path).name
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"{path}: expected a name like a01_s01_e01_skeleton3D.txt, found {name!r}")
    action, subject, episode = (int(group) for group in match.groups())
    if not 1 <= action <= len(ACTIONS):
        raise ValueError(f"{path}: expected an action number 1-{len(ACTIONS)}, found {action}")
    return Recording(action, subject, episode)


def read_recording(path: str | os.PathLike) -> Skeleton:
    """One file as a one-body Skeleton in Kinect v1 joint order (all-zero frames dropped).

    Raises: ValueError for a malformed file (not numeric, not 4 numbers a line, not 20 lines a frame, NaN);
        SampleSkipped("all-zero") when no frame holds a joint.
    """
    path = pathlib.Path(path)
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: expected lines of 4 numbers 'x y z c' ({error})") from None
    if table.size == 0:
        raise SampleSkipped("zero-frames", f"{path}: no joint lines")
    if table.shape[1] != 4 or len(table) % NUM_JOINTS:
        raise ValueError(
            f"{path}: expected 20 lines of 'x y z c' per frame, found {len(table)} lines of {table.shape[1]} numbers"
        )
    if not np.isfinite(table).all():
        raise ValueError(f"{path}: NaN or infinite values in the joint coordinates")
    frames = table.reshape(-1, NUM_JOINTS, 4)[:, KINECT_FROM_MSR]  # (F, 20, 4) in Kinect v1 order
    frames = frames[np.any(frames[..., :3] != 0, axis=(1, 2))]
    if len(frames) == 0:
        raise SampleSkipped("all-zero", f"{path}: every joint of every frame is zero")
    count = len(frames)
    return Skeleton(
        coords=np.ascontiguousarray(frames[:, None, :, :3], dtype=np.float32),  # (F, 1, 20, 3)
        body_counts=np.ones(count, dtype=np.int32),
        body_ids=np.ones((count, 1), dtype=np.uint64),
        tracking=np.where(frames[:, None, :, 3] > 0, 2, 0).astype(np.int8),
    )


def list_recordings(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The folder's `aAA_sSS_eEE_skeleton3D.txt` files in name order; errors name the folder."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: MSR Action3D folder not found")
    paths = sorted(folder.glob(FILE_PATTERN))
    if not paths:
        raise ValueError(f"expected files like a01_s01_e01_skeleton3D.txt in {folder}, found none")
    return paths


def iter_recordings(folder: str | os.PathLike) -> Iterator[tuple[pathlib.Path, Recording]]:
    """(path, Recording) for every recording of the folder, in name order."""
    for path in list_recordings(folder):
        yield path, parse_name(path)


def _read_file(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
    return [(path.name.removesuffix("_skeleton3D.txt"), read_recording(path))]


FORMAT = RawFormat(
    name="msr-action3d", describes="MSR Action3D files (aAA_sSS_eEE_skeleton3D.txt)",
    list=functools.partial(list_named_files, iter_recordings), load=read_recording, read=_read_file,
    matches=lambda path: path.name.endswith("_skeleton3D.txt"), dataset="msr-action3d",
)
