"""What every raw format gives the pipeline, and the one object a format is (numpy only, no Keras).

A `RawFormat` lists a folder for conversion (`process_data.py`: `list` -> `Entry`s, `load` one in a worker
process), reads one file for prediction (`evaluate.py --skeleton / --explain`, `python -m mans.stream`: `read`
-> named `Skeleton`s), and names the joints and bones of its files through the dataset description that lists
them (`layout`, `bones`): a dataset's facts live in its description only (`mans/preprocessing/descriptions/`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable

import numpy as np

MISSING_REASON = "missing-list"  # skipped on request: not an error under strict=True


class SampleSkipped(ValueError):
    """A sample that the chosen mode cannot turn into an image; `.reason` is a short stable key.

    Reasons: "zero-frames", "no-body", "no-usable-frame" (faithful: no frame lists 1 or 2 bodies),
    "last-frame-3+bodies" (faithful: the demo's step 7), "degenerate-body" (the view axes of a body
    are undefined: coincident torso joints or hips along the spine), and in denoised mode the
    `denoise.DenoiseError` reasons "only-noise" and "repeated-body-id" (where CTR-GCN's script fails).
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """One recording, bodies in the order the file lists them in each frame.

    coords: (F, B, J, 3) float32 camera-space x y z in metres, zeros where a frame lists fewer bodies.
    body_counts: (F,) int32 bodies listed in each frame. B = max(body_counts).
    body_ids: (F, B) uint64 the Kinect bodyID of each listed body, 0 where absent.
    tracking: (F, B, J) int8 per-joint trackingState (0 not tracked, 1 inferred, 2 tracked), 0 where absent.
    times: (F,) float64 increasing capture times in any unit (UT-Kinect: the camera's frame numbers, which skip),
        or None where the frames are evenly spaced (NTU: 30 frames a second).
    """

    coords: np.ndarray
    body_counts: np.ndarray
    body_ids: np.ndarray
    tracking: np.ndarray
    times: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.body_counts.shape[0])


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
class Recording:
    """One raw recording, ready to be preprocessed and drawn."""

    name: str
    skeleton: Skeleton
    layout: object  # mans.preprocessing.preprocess.JointLayout
    bones: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class RawFormat:
    """A raw recording format: how to list a folder of it, read one file of it, and whose joints it holds.

    name: the key a dataset description's "reader" gives and `python -m mans.stream --format` takes; aliases:
    other names it answers to. describes: the files in words, for messages and --help.
    list(folder, spec, options) -> Listing and load(Entry.source) -> Skeleton: conversion (module-level
    functions, so that worker processes receive them). unit: what the conversion's progress bar counts.
    whole_dataset: the description covers a full dataset whose subsets are fine (a split may select nothing in
    a subset); False: the folder is the dataset, so a split that selects nothing is refused.
    read(path) -> [(recording name, Skeleton)] and matches(path): prediction from single files (None: the
    format needs a description to read a file, `mans.formats.folder.for_spec`).
    dataset: the built-in dataset whose description lists these files' joints and bones; spec: the
    `DatasetSpec` itself where the format serves one described dataset (the documented folder format).
    """

    name: str
    describes: str
    list: Callable[..., Listing]
    load: Callable[[object], Skeleton]
    read: Callable[[pathlib.Path], list[tuple[str, Skeleton]]] | None = None
    matches: Callable[[pathlib.Path], bool] = lambda path: False
    dataset: str | None = None
    spec: object = None
    unit: str = "file"
    whole_dataset: bool = True
    aliases: tuple[str, ...] = ()

    def _spec(self):
        if self.spec is not None:
            return self.spec
        from mans.preprocessing import datasets  # the descriptions build on the formats

        return datasets.get_dataset(self.dataset)

    @property
    def layout(self):
        """The `JointLayout` of the files' skeletons, from the description of `dataset`."""
        return self._spec().layout

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """0-based joint pairs of one body, from the description of `dataset`."""
        return self._spec().bones

    def recordings(self, path: str | os.PathLike) -> list[Recording]:
        """The recordings of one file; FileNotFoundError or ValueError naming the file."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        if self.read is None:
            raise ValueError(f"{path}: {self.describes} are read through their dataset's description")
        return [Recording(name, skel, self.layout, self.bones) for name, skel in self.read(path)]


def list_named_files(iter_recordings, folder, spec, options) -> Listing:
    """A folder of one file per recording whose name gives its action, subject and repetition
    (`iter_recordings`: `msr_action3d.iter_recordings` or `utd_mhad.iter_recordings`)."""
    entries = []
    for path, recording in iter_recordings(folder):
        columns = {"label": recording.action - 1, "setup": 1, "camera": 1, "performer": recording.subject,
                   "replication": recording.replication}
        entries.append(Entry(recording.name, columns, str(path)))
    return Listing(entries, [], len(entries))


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


def listed_frames(skel: Skeleton) -> list[np.ndarray]:
    """Per frame, the (listed bodies, J, 3) coordinates the recording holds for it, in file order."""
    return [skel.coords[t, : int(count)] for t, count in enumerate(skel.body_counts)]
