"""UTD-MHAD (Chen, Jafari, Kehtarnavaz, ICIP 2015) as distributed: one `aA_sS_tT_skeleton.mat` file per recording.

A file is a MATLAB 5 file with one variable `d_skel` of shape (20, 3, T): Kinect v1 joints in metres, camera
space. The dataset orders the joints its own way (`Skeleton_joint_order.txt`: 1 head, 2 shoulder centre, 3 spine,
4 hip centre, 5-8 left shoulder / elbow / wrist / hand, 9-12 the right ones, 13-16 left hip / knee / ankle / foot,
17-20 the right ones); the reader puts them into the Kinect SDK's order (`KINECT_FROM_UTD`), so that the view
normalisation, the sign fixes and the augmentations treat them exactly as UT-Kinect's. The file is read with
`scipy.io.loadmat` (scipy comes with scikit-learn).
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
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave", "two hand front clap",
    "right arm throw", "cross arms in the chest", "basketball shoot", "right hand draw x",
    "right hand draw circle (clockwise)", "right hand draw circle (counter clockwise)", "draw triangle",
    "bowling (right hand)", "front boxing", "baseball swing from right", "tennis right hand forehand swing",
    "arm curl (two arms)", "tennis serve", "two hand push", "right hand knock on door", "right hand catch an object",
    "right hand pick up and throw", "jogging in place", "walking in place", "sit to stand", "stand to sit",
    "forward lunge (left foot forward)", "squat (two arms stretch out)",
)
NUM_JOINTS = 20
VARIABLE = "d_skel"
FILE_PATTERN = "a*_s*_t*_skeleton.mat"
_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$")
# Kinect v1 joint k is UTD-MHAD joint KINECT_FROM_UTD[k] (0-based): hip centre, spine, shoulder centre, head,
# then the arms and legs, which both orders list alike.
KINECT_FROM_UTD = (3, 2, 1, 0, *range(4, 20))


@dataclasses.dataclass(frozen=True)
class Recording:
    """One UTD-MHAD file's identity, from its name."""

    action: int  # 1-based
    subject: int
    trial: int

    @property
    def replication(self) -> int:
        """The stored replication column: the trial."""
        return self.trial

    @property
    def name(self) -> str:
        return f"a{self.action:02d}_s{self.subject:02d}_t{self.trial:02d}"


def parse_name(path: str | os.PathLike) -> Recording:
    """The action, subject and trial of `aA_sS_tT_skeleton.mat`; ValueError for another name."""
    name = pathlib.Path(path).name
    match = _NAME.match(name)
    if not match:
        raise ValueError(f"{path}: expected a name like a1_s1_t1_skeleton.mat, found {name!r}")
    action, subject, trial = (int(group) for group in match.groups())
    if not 1 <= action <= len(ACTIONS):
        raise ValueError(f"{path}: expected an action number 1-{len(ACTIONS)}, found {action}")
    return Recording(action, subject, trial)


def _load_matrix(path: pathlib.Path) -> np.ndarray:
    from scipy.io import loadmat

    try:
        contents = loadmat(path)
    except Exception as error:  # noqa: BLE001 (scipy raises IndexError, EOFError, ... for a damaged file)
        raise ValueError(f"{path}: not a readable MATLAB file ({error})") from None
    if VARIABLE not in contents:
        found = ", ".join(k for k in contents if not k.startswith("__")) or "none"
        raise ValueError(f"{path}: expected the variable {VARIABLE!r}, found {found}")
    return np.asarray(contents[VARIABLE])


def read_recording(path: str | os.PathLike) -> Skeleton:
    """One file as a one-body Skeleton in Kinect v1 joint order.

    Raises: ValueError for a file that is not a (20, 3, T) `d_skel` of finite numbers;
        SampleSkipped("zero-frames") for T = 0.
    """
    path = pathlib.Path(path)
    matrix = _load_matrix(path)
    if matrix.ndim == 2 and matrix.shape == (NUM_JOINTS, 3):
        matrix = matrix[:, :, None]  # MATLAB drops a trailing singleton axis: one frame
    if matrix.ndim != 3 or matrix.shape[:2] != (NUM_JOINTS, 3) or not np.issubdtype(matrix.dtype, np.number):
        raise ValueError(f"{path}: expected {VARIABLE} of shape (20, 3, frames), found {matrix.dtype} {matrix.shape}")
    if matrix.shape[2] == 0:
        raise SampleSkipped("zero-frames", f"{path}: no frame")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{path}: NaN or infinite values in the joint coordinates")
    frames = np.transpose(matrix, (2, 0, 1))[:, KINECT_FROM_UTD]  # (F, 20, 3) in Kinect v1 order
    count = len(frames)
    return Skeleton(
        coords=np.ascontiguousarray(frames[:, None], dtype=np.float32),  # (F, 1, 20, 3)
        body_counts=np.ones(count, dtype=np.int32),
        body_ids=np.ones((count, 1), dtype=np.uint64),
        tracking=np.full((count, 1, NUM_JOINTS), 2, dtype=np.int8),
    )


def list_recordings(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The folder's `aA_sS_tT_skeleton.mat` files ordered by action, subject and trial; errors name the folder."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: UTD-MHAD folder not found")
    paths = [path for path in folder.glob(FILE_PATTERN) if _NAME.match(path.name)]
    if not paths:
        raise ValueError(f"expected files like a1_s1_t1_skeleton.mat in {folder}, found none")
    return sorted(paths, key=lambda path: parse_name(path).name)


def iter_recordings(folder: str | os.PathLike) -> Iterator[tuple[pathlib.Path, Recording]]:
    """(path, Recording) for every recording of the folder, in name order."""
    for path in list_recordings(folder):
        yield path, parse_name(path)


def _read_file(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
    return [(parse_name(path).name, read_recording(path))]


FORMAT = RawFormat(
    name="utd-mhad", describes="UTD-MHAD files (aA_sS_tT_skeleton.mat)",
    list=functools.partial(list_named_files, iter_recordings), load=read_recording, read=_read_file,
    matches=lambda path: path.name.endswith("_skeleton.mat"), dataset="utd-mhad",
)
