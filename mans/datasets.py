"""Dataset facts: classes, action names, benchmarks, joint layout, per-dataset training defaults.

One registry serves NTU RGB+D 60 and 120 and UT-Kinect-Action3D; their differences are fields of
`DatasetSpec` (STYLE.md section 1), so a new dataset is a reader plus one entry here. Action names are
the datasets' own (REFERENCE.md), index = 0-based label.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping

from mans.msr_action3d import ACTIONS as MSR_ACTION3D_ACTIONS
from mans.preprocess import KINECT_V1_LAYOUT, NTU_LAYOUT, JointLayout
from mans.splits import BENCHMARKS
from mans.utkinect import ACTIONS as UTKINECT_ACTIONS

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
SMALL_DATA_TRAIN_DEFAULTS: dict[str, object] = {
    "batch_size": 16,
    "epochs": 100,
    "schedule": "cosine",
    "augment": True,
    "mirror": 0.5,
    "bn_recompute": True,
    "val": "none",
}
UTKINECT_TRAIN_DEFAULTS = SMALL_DATA_TRAIN_DEFAULTS

# 1-based action numbers of the two-person actions (REFERENCE.md)
TWO_PERSON_ACTIONS: frozenset[int] = frozenset((*range(50, 61), *range(106, 121)))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the pipeline needs to know about one dataset.

    layout: the joints of a body, bodies per sample row and the torso of the view normalisation.
    frames: how the time axis becomes S rows by default ("pad", the demo's; "resample").
    train_defaults: training settings that differ from the paper's for this dataset ({} for NTU).
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    benchmarks: tuple[str, ...]
    layout: JointLayout = NTU_LAYOUT
    frames: str = "pad"  # preprocessing of the time axis (mans.preprocess.FRAMES); the demo pads
    train_defaults: Mapping[str, object] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({})
    )

    @property
    def num_joints(self) -> int:
        return self.layout.num_joints

    @property
    def max_bodies(self) -> int:
        return self.layout.max_bodies


_DATASETS: dict[str, DatasetSpec] = {
    "ntu60": DatasetSpec("ntu60", 60, ACTION_NAMES[:60], BENCHMARKS["ntu60"]),
    "ntu120": DatasetSpec("ntu120", 120, ACTION_NAMES, BENCHMARKS["ntu120"]),
    "utkinect": DatasetSpec(
        "utkinect", 10, UTKINECT_ACTIONS, BENCHMARKS["utkinect"], layout=KINECT_V1_LAYOUT, frames="resample",
        train_defaults=types.MappingProxyType(UTKINECT_TRAIN_DEFAULTS),
    ),
    "msr-action3d": DatasetSpec(
        "msr-action3d", 20, MSR_ACTION3D_ACTIONS, BENCHMARKS["msr-action3d"], layout=KINECT_V1_LAYOUT,
        frames="resample",
        train_defaults=types.MappingProxyType(SMALL_DATA_TRAIN_DEFAULTS),
    ),
}


def get_dataset(name: str) -> DatasetSpec:
    """The registered `DatasetSpec` called `name` ("ntu60", "ntu120", "utkinect", "msr-action3d")."""
    if name not in _DATASETS:
        raise ValueError(f"expected a dataset among {sorted(_DATASETS)}, found {name!r}")
    return _DATASETS[name]


def detect_dataset(actions) -> str:
    """"ntu120" when any 1-based action number exceeds 60, else "ntu60"."""
    return "ntu120" if any(int(a) > 60 for a in actions) else "ntu60"
