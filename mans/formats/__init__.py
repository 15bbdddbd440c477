"""Reading raw recordings, numpy only (no Keras): one module per raw format, each one `RawFormat` object.

    base          the interface: RawFormat, Skeleton, Entry / Listing (conversion), Recording (prediction)
    ntu           NTU RGB+D 60 / 120 `.skeleton` files
    utkinect      UT-Kinect-Action3D: joints/ and actionLabel.txt
    msr_action3d  MSR Action3D `aAA_sSS_eEE_skeleton3D.txt` files
    utd_mhad      UTD-MHAD `aA_sS_tT_skeleton.mat` files
    folder        the documented format of your own data: .npy sequences and a labels table

Conversion (`mans.preprocessing.storage`), prediction (`evaluate.py --skeleton`), `--explain` and the stream all
read through the same objects. A description's "reader" key names its format; adding a raw format is one module
with a `FORMAT` and one `register_format` call here.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

from mans.formats import folder, msr_action3d, ntu, utd_mhad, utkinect
from mans.formats.base import (  # noqa: F401 (the interface, for the modules that use it)
    MISSING_REASON,
    Entry,
    Listing,
    RawFormat,
    Recording,
    SampleSkipped,
    Skeleton,
    listed_frames,
    skeleton_from_array,
    skeleton_from_frames,
)
from mans.formats.folder import load_sequence  # noqa: F401

NTU_SKELETON = ntu.FORMAT
UTKINECT_JOINTS = utkinect.FORMAT
MSR_ACTION3D_FILES = msr_action3d.FORMAT
UTD_MHAD_FILES = utd_mhad.FORMAT
FOLDER = folder.FORMAT
_FORMATS: dict[str, RawFormat] = {}


def register_format(fmt: RawFormat) -> None:
    """Make `fmt` the raw format of its name (replacing an earlier format of the same name)."""
    _FORMATS[fmt.name] = fmt


for _fmt in (FOLDER, NTU_SKELETON, UTKINECT_JOINTS, MSR_ACTION3D_FILES, UTD_MHAD_FILES):
    register_format(_fmt)


def formats() -> list[RawFormat]:
    """Every registered format, in registration order."""
    return list(_FORMATS.values())


def file_formats() -> list[RawFormat]:
    """The registered formats whose single files are read by their name alone."""
    return [fmt for fmt in _FORMATS.values() if fmt.read is not None]


def format_named(name: str) -> RawFormat:
    """The registered format called `name` (or one of its aliases)."""
    for fmt in _FORMATS.values():
        if name == fmt.name or name in fmt.aliases:
            return fmt
    raise ValueError(f"expected a raw format among {sorted(_FORMATS)}, found {name!r}")


def format_for_spec(spec) -> RawFormat:
    """The documented folder format for a described dataset (`DatasetSpec`), reading its .npy sequences."""
    return folder.for_spec(spec)


def format_for_dataset(dataset: str) -> RawFormat:
    """The raw format whose recordings a checkpoint trained on `dataset` classifies: the one its description
    names ("reader"), the documented folder format reading the description's .npy sequences for "folder"."""
    from mans.preprocessing import datasets  # the descriptions build on the formats

    try:
        spec = datasets.get_dataset(dataset)
    except ValueError:
        known = ", ".join(datasets.known_names())
        raise ValueError(f"no raw recording format is known for dataset {dataset!r} (known: {known})") from None
    reader = spec.description.reader
    return format_for_spec(spec) if reader == FOLDER.name else format_named(reader)


def format_for_attrs(attrs: Mapping[str, object]) -> RawFormat:
    """The raw format of a converted file's (or a run record's `data_attrs`) dataset; its own description,
    when it carries one, is registered first (`datasets.register_attrs`)."""
    from mans.preprocessing import datasets

    datasets.register_attrs(attrs)
    return format_for_dataset(str(attrs.get("dataset")))


def format_for_file(path: str | os.PathLike) -> RawFormat:
    """The registered format a file's name matches; ValueError naming the file when none does."""
    path = pathlib.Path(path)
    for fmt in file_formats():
        if fmt.matches(path):
            return fmt
    described = "; ".join(fmt.describes for fmt in file_formats())
    raise ValueError(f"{path}: not a recording format the project reads by its name ({described})")


def read_recordings(path: str | os.PathLike, fmt: RawFormat) -> list[Recording]:
    """The recordings of `path` in format `fmt`; ValueError when the name says it is another format."""
    path = pathlib.Path(path)
    if not fmt.matches(path):
        raise ValueError(f"{path}: expected {fmt.describes}, found a file of another name")
    return fmt.recordings(path)
