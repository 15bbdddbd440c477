"""Raw recordings of every format the project reads, behind one small interface (numpy only, no Keras).

A `RecordingFormat` turns a file into named `Recording`s: a `Skeleton` together with the joint layout the
preprocessing needs and the bones a picture draws. `evaluate.py --skeleton / --explain` and
`python -m mans.stream --print-frames` read raw files only through it, so a new raw format plugs in with one
call and no change elsewhere:

    register_format(RecordingFormat(
        name="msr-action3d", datasets=("msr-action3d",), layout=MSR_LAYOUT, bones=MSR_BONES,
        read=read_msr_file, matches=lambda path: path.name.endswith("_skeleton3D.txt"),
        describes="MSR Action3D skeleton files (aAA_sSS_eEE_skeleton3D.txt)"))

`read(path)` returns `[(name, Skeleton), ...]` and raises ValueError (or FileNotFoundError) with a message
that names the file. Bones are 0-based joint pairs of one body.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Mapping

import numpy as np

from mans import datasets, msr_action3d, readers, skeleton_io, utd_mhad, utkinect
from mans.preprocess import KINECT_V1_BONES, KINECT_V1_LAYOUT, NTU_BONES, NTU_LAYOUT, JointLayout
from mans.readers import skeleton_from_frames  # noqa: F401 (mans.stream reads it from here)
from mans.skeleton_io import Skeleton


@dataclasses.dataclass(frozen=True)
class Recording:
    """One raw recording, ready to be preprocessed and drawn."""

    name: str
    skeleton: Skeleton
    layout: JointLayout
    bones: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class RecordingFormat:
    """A raw file format: how to read it and what its skeletons are.

    name: short key ("ntu-skeleton"). datasets: the `mans.datasets` names whose checkpoints take it.
    layout: the joints of a body and the bodies a row holds. bones: 0-based joint pairs for pictures.
    read: path -> [(recording name, Skeleton)]. matches: whether a path looks like this format.
    describes: the format in words, for messages and --help.
    """

    name: str
    datasets: tuple[str, ...]
    layout: JointLayout
    bones: tuple[tuple[int, int], ...]
    read: Callable[[pathlib.Path], list[tuple[str, Skeleton]]]
    matches: Callable[[pathlib.Path], bool]
    describes: str

    def recordings(self, path: str | os.PathLike) -> list[Recording]:
        """The recordings of one file; FileNotFoundError or ValueError naming the file."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        return [Recording(name, skel, self.layout, self.bones) for name, skel in self.read(path)]


def _read_ntu(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
    return [(path.name.split(".", 1)[0], skeleton_io.read_skeleton(path))]


def _read_utkinect(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
    """A joints_sSS_eEE.txt file: one recording per labelled action when the dataset's actionLabel.txt lies
    in the folder above joints/, else the whole file as one recording."""
    frame_numbers, coords = utkinect.read_joints(path)
    sequence = path.stem.removeprefix("joints_")
    labels = path.parent.parent / utkinect.LABEL_FILE
    if path.parent.name == utkinect.JOINTS_DIR and labels.is_file():
        segments = [s for s in utkinect.read_action_labels(labels)[0] if s.sequence == sequence]
        if segments:
            return [(s.name, utkinect.cut_segment(frame_numbers, coords, s, str(path))) for s in segments]
    whole = utkinect.Segment(sequence, 0, 0, 0, int(frame_numbers.min()), int(frame_numbers.max()))
    return [(sequence, utkinect.cut_segment(frame_numbers, coords, whole, str(path)))]


NTU_SKELETON = RecordingFormat(
    name="ntu-skeleton",
    datasets=("ntu60", "ntu120"),
    layout=NTU_LAYOUT,
    bones=NTU_BONES,
    read=_read_ntu,
    matches=lambda path: path.suffix == ".skeleton",
    describes="NTU RGB+D .skeleton files",
)
UTKINECT_JOINTS = RecordingFormat(
    name="utkinect-joints",
    datasets=("utkinect",),
    layout=KINECT_V1_LAYOUT,
    bones=KINECT_V1_BONES,
    read=_read_utkinect,
    matches=lambda path: path.name.startswith("joints_") and path.suffix == ".txt",
    describes="UT-Kinect-Action3D joint files (joints_sSS_eEE.txt)",
)
MSR_ACTION3D_FILES = RecordingFormat(
    name="msr-action3d",
    datasets=("msr-action3d",),
    layout=KINECT_V1_LAYOUT,
    bones=KINECT_V1_BONES,  # the reader puts MSR's joints into Kinect v1's order
    read=lambda path: [(path.name.removesuffix("_skeleton3D.txt"), msr_action3d.read_recording(path))],
    matches=lambda path: path.name.endswith("_skeleton3D.txt"),
    describes="MSR Action3D files (aAA_sSS_eEE_skeleton3D.txt)",
)
UTD_MHAD_FILES = RecordingFormat(
    name="utd-mhad",
    datasets=("utd-mhad",),
    layout=KINECT_V1_LAYOUT,
    bones=KINECT_V1_BONES,  # the reader puts UTD-MHAD's joints into Kinect v1's order
    read=lambda path: [(utd_mhad.parse_name(path).name, utd_mhad.read_recording(path))],
    matches=lambda path: path.name.endswith("_skeleton.mat"),
    describes="UTD-MHAD files (aA_sS_tT_skeleton.mat)",
)
_FORMATS: dict[str, RecordingFormat] = {}


def register_format(fmt: RecordingFormat) -> None:
    """Make `fmt` the raw format of its datasets (replacing an earlier format of the same name)."""
    _FORMATS[fmt.name] = fmt


register_format(NTU_SKELETON)
register_format(UTKINECT_JOINTS)
register_format(MSR_ACTION3D_FILES)
register_format(UTD_MHAD_FILES)


def formats() -> list[RecordingFormat]:
    """Every registered format, in registration order."""
    return list(_FORMATS.values())


def format_named(name: str) -> RecordingFormat:
    if name not in _FORMATS:
        raise ValueError(f"expected a recording format among {sorted(_FORMATS)}, found {name!r}")
    return _FORMATS[name]


def format_for_dataset(dataset: str) -> RecordingFormat:
    """The raw format whose recordings a checkpoint trained on `dataset` classifies: a registered one, else the
    documented folder format's .npy sequences of the dataset's description (`format_for_spec`)."""
    for fmt in _FORMATS.values():
        if dataset in fmt.datasets:
            return fmt
    try:
        spec = datasets.get_dataset(dataset)
    except ValueError:
        known = sorted(d for fmt in _FORMATS.values() for d in fmt.datasets)
        message = f"no raw recording format is known for dataset {dataset!r} (known: {', '.join(known)})"
        raise ValueError(message) from None
    return format_for_spec(spec)


def format_for_attrs(attrs: Mapping[str, object]) -> RecordingFormat:
    """The raw format of a converted file's (or a run record's `data_attrs`) dataset; its own description,
    when it carries one, is registered first (`datasets.register_attrs`)."""
    datasets.register_attrs(attrs)
    return format_for_dataset(str(attrs.get("dataset")))


def format_for_spec(spec: datasets.DatasetSpec) -> RecordingFormat:
    """The documented folder format for a described dataset: one .npy sequence a file, (frames, joints, channels)
    or (frames, bodies, joints, channels) with the description's joints and coordinates."""
    desc = spec.description
    channels = 2 if desc.coordinates == "xy" else 3
    shape = (desc.bodies, len(desc.joints), desc.coordinates)

    def read(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
        return [(path.stem, readers.load_sequence(str(path), shape))]

    return RecordingFormat(
        name=f"{spec.name}-npy", datasets=(spec.name,), layout=spec.layout, bones=spec.bones, read=read,
        matches=lambda path: path.suffix == ".npy",
        describes=f"{spec.name} .npy sequences of (frames, [bodies,] {len(desc.joints)} joints, {channels} channels)",
    )


def format_for_file(path: str | os.PathLike) -> RecordingFormat:
    """The registered format a file's name matches; ValueError naming the file when none does."""
    path = pathlib.Path(path)
    for fmt in _FORMATS.values():
        if fmt.matches(path):
            return fmt
    described = "; ".join(fmt.describes for fmt in _FORMATS.values())
    raise ValueError(f"{path}: not a recording format the project reads by its name ({described})")


def read_recordings(path: str | os.PathLike, fmt: RecordingFormat) -> list[Recording]:
    """The recordings of `path` in format `fmt`; ValueError when the name says it is another format."""
    path = pathlib.Path(path)
    if not fmt.matches(path):
        raise ValueError(f"{path}: expected {fmt.describes}, found a file of another name")
    return fmt.recordings(path)


def listed_frames(skel: Skeleton) -> list[np.ndarray]:
    """Per frame, the (listed bodies, J, 3) coordinates the recording holds for it, in file order."""
    return [skel.coords[t, : int(count)] for t, count in enumerate(skel.body_counts)]
