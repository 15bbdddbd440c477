"""Dataset facts: classes, action names, benchmarks, joint layout, per-dataset training defaults.

Every dataset is a description (`mans.preprocessing.description`): the built-ins NTU RGB+D 60 / 120,
UT-Kinect-Action3D and
MSR Action3D ship theirs in `mans/preprocessing/descriptions/`, a user's own dataset brings one, and a converted file
carries its description in its attributes (`register_attrs` puts it back in the registry when the file is
read). `DatasetSpec` is what the pipeline reads of a description. Action names are the datasets' own
(docs/paper.md), index = 0-based label.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
from collections.abc import Mapping

from mans.preprocessing import description as description_lib
from mans.preprocessing.preprocess import JointLayout, Preprocessing, parents_from_bones

ACTION_NAMES: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)", "jump up",
    "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
    "pointing to something with finger", "taking a selfie", "check time (from watch)",
    "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering",
    "falling", "touch head (headache)", "touch chest (stomachache/heart pain)",
    "touch back (backache)", "touch neck (neckache)", "nausea or vomiting condition",
    "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
    "kicking other person", "pushing other person", "pat on back of other person",
    "point finger at the other person", "hugging other person", "giving something to other person",
    "touch other person's pocket", "handshaking", "walking towards each other",
    "walking apart from each other",
    # NTU RGB+D 120 adds actions 61-120
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up",
    "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
    "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects",
    "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles",
    "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
    "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five",
    "cheers and drink", "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear", "exchange things with other person",
    "support somebody with hand", "finger-guessing game (playing rock-paper-scissors)",
)

# UT-Kinect and MSR Action3D: about 100 / 300 training sequences instead of NTU's 40,000. Chosen by
# leave-one-subject-out over UT-Kinect's five training subjects only (bench/bench_recipes.py, bench/RESULTS.md):
# batches of 16 so that an epoch still has several steps; 100 epochs of a cosine decay to min_lr (the plateau
# schedule rarely cut the rate on ~7 steps an epoch); augmentation on, with a left-right mirror half the time;
# the BatchNormalization statistics recomputed on the training samples at the end (they lag with few steps);
# no validation hold-out: one held-out subject is ~20 sequences, too few to pick an epoch, so the last epoch is
# kept. Their recordings are resampled onto all S rows (DatasetSpec.frames) rather than zero-padded.
# Their descriptions also choose rigid sign fixes (DatasetSpec.signs; LOSO 78.0 -> 84.0 %, seed 1) and every
# frame's own hip centre in the horizontal plane as the origin (DatasetSpec.centre "floor"; LOSO 88.0 % with the
# first frame's, 89.7 % with every frame's whole hip centre, 92.0 % with "floor", means of seeds 1 2 3).
# Each TARM starts as the identity (its output Dense at zero; the same network): 92.0 -> 95.0 % (seeds 1 2 3).
SMALL_DATA_TRAIN_DEFAULTS: dict[str, object] = {
    "batch_size": 16,
    "epochs": 100,
    "schedule": "cosine",
    "augment": True,
    "mirror": 0.5,
    "bn_recompute": True,
    "tarm_identity_start": True,
    "val": "none",
}
UTKINECT_TRAIN_DEFAULTS = SMALL_DATA_TRAIN_DEFAULTS
PRESETS: Mapping[str, Mapping[str, object]] = {"small-data": SMALL_DATA_TRAIN_DEFAULTS}  # Training.preset

# 1-based action numbers of the two-person actions (docs/paper.md)
TWO_PERSON_ACTIONS: frozenset[int] = frozenset((*range(50, 61), *range(106, 121)))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the pipeline needs to know about one dataset, read from its description.

    layout: the joints of a body, bodies per sample row and the joints of the view normalisation.
    frames: how the time axis becomes S rows by default ("pad", the demo's; "resample"). signs: the sign fixes
    of the view normalisation by default ("demo", the authors'; "rigid"). centre: its origin by default ("first",
    the demo's; "frame").
    train_defaults: training settings that differ from the paper's for this dataset ({} for NTU);
    stream_train_defaults: a stream's own settings over them ({modality: settings}; `train_defaults_of`).
    benchmarks: the split names, "loso" and its folds "loso-K" included. description: the whole description.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    benchmarks: tuple[str, ...]
    layout: JointLayout
    frames: str = "pad"  # preprocessing of the time axis (mans.preprocessing.preprocess.FRAMES); the demo pads
    signs: str = "demo"  # the sign fixes of the view normalisation (mans.preprocessing.preprocess.SIGNS); the demo's
    centre: str = "first"  # the origin of the view normalisation (mans.preprocessing.preprocess.CENTRES); the demo's
    scale: str = "none"  # the unit of the coordinates (preprocess.SCALES); the demo's: the recording's
    train_defaults: Mapping[str, object] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({})
    )
    stream_train_defaults: Mapping[str, Mapping[str, object]] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({})
    )
    joint_names: tuple[str, ...] = ()
    bones: tuple[tuple[int, int], ...] = ()  # 0-based joint pairs of one body, for pictures
    description: description_lib.Description | None = None

    @property
    def num_joints(self) -> int:
        return self.layout.num_joints

    @property
    def max_bodies(self) -> int:
        return self.layout.max_bodies

    def preprocessing(
        self, mode: str = "faithful", frames: str | None = None, signs: str | None = None, centre: str | None = None,
        modality: str = "joint", scale: str | None = None,
    ) -> Preprocessing:
        """The preprocessing of this dataset's files: the settings given, the dataset's own where one is None."""
        return Preprocessing(mode, frames or self.frames, signs or self.signs, centre or self.centre, modality,
                             scale or self.scale)

    def train_defaults_of(self, modality: str) -> dict[str, object]:
        """The training defaults of one stream: the dataset's, with the stream's own over them."""
        return {**self.train_defaults, **self.stream_train_defaults.get(modality, {})}

    def split(self, benchmark: str) -> description_lib.Split:
        """The rule of a benchmark ("loso-3": the "loso" rule)."""
        splits = self.description.splits
        return splits.get(benchmark) or splits[benchmark.rsplit("-", 1)[0]]


def layout_of(desc: description_lib.Description) -> JointLayout:
    """The `JointLayout` of a description: its named joints as 0-based indices."""
    index = desc.joint_index
    return JointLayout(
        num_joints=len(desc.joints), max_bodies=desc.bodies, torso=tuple(map(index, desc.view.torso)),
        mirror=tuple((index(a), index(b)) for a, b in desc.mirror), origin=tuple(map(index, desc.view.origin)),
        hips=(index(desc.view.hips[0]), index(desc.view.hips[1])), up=index(desc.view.up),
        feet=tuple((index(a), index(b)) for a, b in desc.view.feet), dims=desc.dims,
        parents=parents_from_bones([(index(a), index(b)) for a, b in desc.bones], len(desc.joints),
                                   index(desc.view.torso[0])),
    )


def benchmark_names(desc: description_lib.Description) -> tuple[str, ...]:
    """The benchmark names of a description: each split, and "name-value" for each fold of a leave-one-out."""
    names: list[str] = []
    for name, rule in desc.splits.items():
        names.append(name)
        if rule.leave_one_out is not None:
            names.extend(f"{name}-{value}" for value in rule.values or ())
    return tuple(names)


def spec_from_description(desc: description_lib.Description) -> DatasetSpec:
    """The `DatasetSpec` of a checked description."""
    training = desc.training.model_dump(exclude_none=True)
    streams = {name: types.MappingProxyType(settings) for name, settings in training.pop("streams").items()}
    defaults = dict(PRESETS[training.pop("preset")]) if "preset" in training else {}
    defaults.update(training)
    index = desc.joint_index
    return DatasetSpec(
        name=desc.name, num_classes=len(desc.actions), class_names=tuple(desc.actions),
        benchmarks=benchmark_names(desc), layout=layout_of(desc), frames=desc.frames, signs=desc.signs,
        centre=desc.centre, scale=desc.scale, train_defaults=types.MappingProxyType(defaults),
        stream_train_defaults=types.MappingProxyType(streams), joint_names=tuple(desc.joints),
        bones=tuple((index(a), index(b)) for a, b in desc.bones), description=desc,
    )


@functools.cache
def _builtin(name: str) -> DatasetSpec:
    return spec_from_description(description_lib.load_description(description_lib.builtin_path(name)))


_REGISTERED: dict[str, DatasetSpec] = {}  # descriptions of files read in this process


def register(spec: DatasetSpec) -> DatasetSpec:
    """Make `spec` the dataset of its name in this process (a file's own description)."""
    _REGISTERED[spec.name] = spec
    return spec


def register_attrs(attrs: Mapping[str, object]) -> DatasetSpec | None:
    """Register the description a converted file carries in its attrs ("description"); None when it has none."""
    text = attrs.get("description")
    if text is None:
        return None
    data = json.loads(text) if isinstance(text, str) else text
    return register(spec_from_description(description_lib.parse_description(data, "the file's description")))


def known_names() -> list[str]:
    return sorted({*description_lib.builtin_names(), *_REGISTERED})


def get_dataset(name: str) -> DatasetSpec:
    """The `DatasetSpec` called `name`: a file's description read in this process, else a built-in one
    ("ntu60", "ntu120", "utkinect", "msr-action3d", "utd-mhad")."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in description_lib.builtin_names():
        raise ValueError(f"expected a dataset among {known_names()}, found {name!r}")
    return _builtin(name)


def load_dataset(name_or_path: str) -> DatasetSpec:
    """A built-in dataset by name, or the description file at a path (DescriptionError naming it)."""
    if name_or_path in description_lib.builtin_names():
        return get_dataset(name_or_path)
    if name_or_path.endswith(".json") or "/" in name_or_path:
        return spec_from_description(description_lib.load_description(name_or_path))
    raise ValueError(f"--dataset: expected a built-in dataset ({', '.join(description_lib.builtin_names())}) or "
                     f"a description .json file, found {name_or_path!r}")


def detect_dataset(actions) -> str:
    """"ntu120" when any 1-based action number exceeds 60, else "ntu60"."""
    return "ntu120" if any(int(a) > 60 for a in actions) else "ntu60"
