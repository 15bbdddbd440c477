"""A dataset description: the JSON file that makes a folder of skeleton arrays (or a raw dataset) a dataset.

The schema is a pydantic model (`Description`); every key is documented in docs/own-data.md and
in `data/template_description.json`. Joints are named, and every other part names them: the view
normalisation's joints, the mirror pairs, the bones. Benchmark splits are rules on the labels table's
grouping columns: `{"train": {"subject": [1, 3, 5]}}` trains on the rows whose subject is 1, 3 or 5 (several
columns: all must match) and tests on the others; `{"leave_one_out": "subject"}` is one fold per value,
named `<split>-<value>` (the values are filled in from the labels table at conversion).

`load_description(path)` raises `DescriptionError` (a ValueError) in one line that names the file and the key.
Numpy and pydantic only.
"""

from __future__ import annotations

import json
import os
import pathlib
import typing
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from mans import formats

FORMAT = "mans-description/1"
COORDINATES = ("xyz", "xy", "xy+score")
READERS = ("folder", "ntu-skeleton", "utkinect", "msr-action3d", "utd-mhad")
# Columns of the stored file that a grouping column may not be called (the stored "performer" is the subject).
RESERVED_COLUMNS = ("x", "label", "name", "frames", "performer", "sequence", "action")
FIXED_COLUMNS = ("setup", "camera", "replication")  # stored as int16 columns of their own
TRAINING_KEYS = ("batch_size", "epochs", "schedule", "augment", "mirror", "bn_recompute", "val")


class DescriptionError(ValueError):
    """A description that cannot be used; the message is one line naming the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class View(_Strict):
    """The joints of the view normalisation (`mans.preprocessing.preprocess.view_frame`, `view_frame_2d`)."""

    origin: list[str] = Field(min_length=1)  # their mean is the origin (the demo: the two hips)
    torso: list[str] = Field(min_length=2)  # their first principal axis is the up axis
    hips: tuple[str, str]  # (left, right): the hip vector, and the check that right lies at +x
    up: str  # a joint above the origin: the up axis is flipped if it lies below in the first frame
    feet: list[tuple[str, str]] = []  # (ankle, foot) pairs: y is flipped if a foot points backwards (3D only)


class Split(_Strict):
    """One benchmark: train on the rows matching `train`, or leave one value of a column out per fold."""

    train: dict[str, list[int | str]] | None = None
    leave_one_out: str | None = None
    values: list[int | str] | None = None  # leave_one_out: the folds (filled in at conversion)

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> Split:
        if (self.train is None) == (self.leave_one_out is None):
            raise ValueError("expected exactly one of 'train' (column: values) and 'leave_one_out' (a column)")
        if self.train is not None and (not self.train or any(not v for v in self.train.values())):
            raise ValueError("expected 'train' to map at least one column to a non-empty list of values")
        return self


class TrainingSettings(_Strict):
    """Training defaults (any left out: the paper's); flags on train_MANs.py still win."""

    batch_size: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    schedule: Literal["plateau", "cosine"] | None = None
    augment: bool | None = None
    mirror: float | None = Field(None, ge=0, le=1)
    bn_recompute: bool | None = None
    tarm_identity_start: bool | None = None  # each TARM starts as the identity (train_MANs.py --tarm-identity-start)
    val: Literal["holdout", "test", "none"] | None = None
    init_from: str | None = None  # a .keras checkpoint to fine-tune from (train_MANs.py --init-from)


class Training(TrainingSettings):
    """Training defaults of this dataset: `TrainingSettings`, a preset under them, and a stream's own over them."""

    preset: Literal["small-data"] | None = None  # datasets.SMALL_DATA_TRAIN_DEFAULTS, the keys above override
    # a stream's own settings over the dataset's, e.g. {"motion": {"tarm_identity_start": true}}
    streams: dict[Literal["joint", "bone", "motion"], TrainingSettings] = {}


class Description(_Strict):
    """A dataset: its actions, joints, view normalisation, splits and defaults."""

    format: Literal["mans-description/1"] = FORMAT
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=40)
    reader: str = "folder"  # a raw format of mans.formats: "folder" (yours) or a built-in dataset's
    actions: list[str] = Field(min_length=2)
    joints: list[str] = Field(min_length=3)
    bodies: int = Field(1, ge=1, le=4)
    coordinates: Literal["xyz", "xy", "xy+score"] = "xyz"
    view: View
    mirror: list[tuple[str, str]] = []
    bones: list[tuple[str, str]] = []
    labels: str = "labels.csv"  # folder reader: the labels table, relative to the skeletons folder
    columns: list[str] = ["subject"]  # the labels table's grouping columns (beside sequence and action)
    splits: dict[str, Split] = Field(min_length=1)
    frames: Literal["pad", "resample", "timed"] = "pad"
    signs: Literal["demo", "rigid"] = "demo"  # the sign fixes of the view normalisation (preprocess.SIGNS)
    centre: Literal["first", "frame", "floor"] = "first"  # origin of the view normalisation (preprocess.CENTRES)
    scale: Literal["none", "torso"] = "none"  # the unit of the coordinates (mans.preprocessing.preprocess.SCALES)
    # the streams process_data.py converts and train_MANs.py trains by default, one MANs each, scores fused
    modalities: list[Literal["joint", "bone", "motion"]] = Field(["joint"], min_length=1)
    training: Training = Training()

    @pydantic.field_validator("reader")
    @classmethod
    def _registered_format(cls, reader: str) -> str:
        names = [fmt.name for fmt in formats.formats()]
        if reader not in names:
            raise ValueError("Input should be " + ", ".join(map(repr, names[:-1])) + f" or {names[-1]!r}")
        return reader

    @pydantic.model_validator(mode="after")
    def _names_exist(self) -> Description:
        _check_unique("actions", self.actions)
        _check_unique("joints", self.joints)
        _check_unique("columns", self.columns)
        _check_unique("modalities", self.modalities)
        if "bone" in self.modalities and not self.bones:
            raise ValueError("key 'modalities': the bone modality needs the description's 'bones'")
        known = set(self.joints)
        named = [("view.origin", j) for j in self.view.origin] + [("view.torso", j) for j in self.view.torso]
        named += [("view.hips", j) for j in self.view.hips] + [("view.up", self.view.up)]
        named += [("view.feet", j) for pair in self.view.feet for j in pair]
        named += [("mirror", j) for pair in self.mirror for j in pair]
        named += [("bones", j) for pair in self.bones for j in pair]
        for key, joint in named:
            if joint not in known:
                raise ValueError(f"key {key!r}: joint {joint!r} is not one of the description's joints")
        for column in self.columns:
            if column in RESERVED_COLUMNS and not (column == "performer" and self.reader != "folder"):
                raise ValueError(f"key 'columns': {column!r} is reserved (reserved: {', '.join(RESERVED_COLUMNS)})")
        if self.reader == "folder" and "subject" not in self.columns:
            raise ValueError("key 'columns': expected 'subject' among the grouping columns (splits hold subjects out)")
        for split, rule in self.splits.items():
            used = list(rule.train or ()) + ([rule.leave_one_out] if rule.leave_one_out else [])
            for column in used:
                if column not in self.columns:
                    raise ValueError(f"key 'splits.{split}': column {column!r} is not one of columns {self.columns}")
        return self

    @property
    def dims(self) -> int:
        return 3 if self.coordinates == "xyz" else 2

    def joint_index(self, name: str) -> int:
        return self.joints.index(name)


def _check_unique(key: str, values: list[str]) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"key {key!r}: {value!r} appears twice")
        seen.add(value)


def _where(location: tuple) -> str:
    return ".".join(str(part) for part in location if not str(part).startswith("function-after"))


def parse_description(data: object, source: str = "description") -> Description:
    """A `Description` from decoded JSON; DescriptionError in one line naming `source` and the key."""
    try:
        return Description.model_validate(data)
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = _where(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown key (known: {', '.join(_known_keys(first['loc']))})"
        elif first["type"] == "missing":
            message = "required key missing"
        prefix = f"{source}: key {where!r}: " if where else f"{source}: "
        raise DescriptionError(prefix + message) from None


def _known_keys(location: tuple) -> list[str]:
    """The keys allowed where an unknown key was found."""
    model: type[BaseModel] = Description
    for part in location[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:  # a list index or a split's name
            continue
        for candidate in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
    return list(model.model_fields)


def load_description(path: str | os.PathLike) -> Description:
    """Read and check a description JSON file; FileNotFoundError or DescriptionError naming the file."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: description file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DescriptionError(f"{path}: not valid JSON ({error})") from None
    return parse_description(data, str(path))


def builtin_path(name: str) -> pathlib.Path:
    """The description shipped with the package for a built-in dataset (mans/preprocessing/descriptions/<name>.json)."""
    return pathlib.Path(__file__).with_name("descriptions") / f"{name}.json"


def builtin_names() -> list[str]:
    return sorted(path.stem for path in pathlib.Path(__file__).with_name("descriptions").glob("*.json"))
