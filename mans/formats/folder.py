"""The documented folder format (README "Your own data"): one .npy array per sequence, (frames, joints,
channels) or (frames, bodies, joints, channels), and a labels table (CSV: sequence, action, subject and the
description's other grouping columns). Its joints, coordinates and actions are the dataset description's.
"""

from __future__ import annotations

import csv
import os
import pathlib

import numpy as np

from mans.formats.base import Entry, Listing, RawFormat, SampleSkipped, Skeleton, skeleton_from_array


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


def _load_folder(source: tuple[str, tuple[int, int, str]]) -> Skeleton:
    return load_sequence(*source)


FORMAT = RawFormat(name="folder", describes=".npy sequences of a described dataset", list=_list_folder,
                   load=_load_folder, unit="sequence", whole_dataset=False)


def for_spec(spec) -> RawFormat:
    """The folder format of one described dataset (`DatasetSpec`), which reads single .npy sequences too:
    (frames, [bodies,] joints, channels) with the description's joints and coordinates."""
    desc = spec.description
    channels = 2 if desc.coordinates == "xy" else 3
    shape = (desc.bodies, len(desc.joints), desc.coordinates)

    def read(path: pathlib.Path) -> list[tuple[str, Skeleton]]:
        return [(path.stem, load_sequence(str(path), shape))]

    return RawFormat(
        name=f"{spec.name}-npy", list=_list_folder, load=_load_folder, read=read, spec=spec, unit="sequence",
        whole_dataset=False, matches=lambda path: path.suffix == ".npy",
        describes=f"{spec.name} .npy sequences of (frames, [bodies,] {len(desc.joints)} joints, {channels} channels)",
    )
