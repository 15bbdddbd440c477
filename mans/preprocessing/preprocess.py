"""One NTU skeleton recording -> the S x S x 3 image of MANs (time x joint column x coordinate).

Pure numpy, no Keras. Two modes (docs/paper.md, "Preprocessing in the authors' demo"):

faithful   steps 2-7 of the authors' demo exactly: bodies taken by their index in each frame, frames
           with 0 or more than 2 bodies left as zero rows, a per-body view normalisation from the
           first frame with 1-2 bodies in which that index appears, sign fixes, padding or sampling to
           S rows, and the demo's last-frame quirk (a sample whose last frame lists more than 2 bodies
           is skipped, reason "last-frame-3+bodies").
denoised   the field's standard NTU body selection: bodies, actor 1 / actor 2 and the frames kept are
           exactly those of CTR-GCN's `get_raw_denoised_data.py` (`mans.preprocessing.denoise`, rules listed there);
           then each actor is view-normalised from its own first frame with joints, and the sign
           fixes and length are as in faithful mode; nothing is skipped for its last frame.

A sample that cannot be processed raises `SampleSkipped` with a short `.reason` for the skip report.
The array layout is (T, bodies * joints, 3) rows until `to_fixed_length` makes it (S, S, 3).

The joints a dataset's skeleton has are a `JointLayout`: `NTU_LAYOUT` (Kinect v2, 25 joints, two
bodies, the default everywhere) and `KINECT_V1_LAYOUT` (UT-Kinect: 20 joints, one body). Kinect v1's
20 joints have Kinect v2's indices, so the hips, shoulders, ankles and feet of the sign fixes are the
same; the torso of the view normalisation takes the shoulder centre (2) for the spine shoulder (20).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mans.formats.base import SampleSkipped
from mans.preprocessing.denoise import DenoisedSequence, DenoiseError, denoise_skeleton

MODES = ("faithful", "denoised")
# Time axis to S rows: "pad" is the demo's step 6 (zero-pad a short recording, sample a long one); "resample"
# (ours) interpolates the recorded frames linearly onto all S rows, so that every action fills the image; "timed"
# (ours) does so at S instants evenly spaced in time, where a reader gives capture times (`Skeleton.times`:
# UT-Kinect's camera skips frames unevenly), and is "resample" elsewhere.
FRAMES = ("pad", "resample", "timed")
# Step 5, the sign fixes: "demo" is the authors' (each axis tested alone: a noisy foot test negates y alone and
# turns the sequence into its front-back reflection); "rigid" (ours) keeps the frame a rotation: an up axis
# that points down negates up and the facing axis together, and nothing else is ever negated.
SIGNS = ("demo", "rigid")
# The origin of the view normalisation: "first" is the demo's (each body's hip centre in its reference frame, kept
# for the whole recording, so the image also holds where the actor walks or crouches to); "frame" (ours) moves
# the origin to every frame's own hip centre of its first body present (`centre_frames`), after the sign fixes;
# "floor" (ours) moves it in the horizontal plane only, so the image keeps how high the hips are (sitting down,
# bending) but not where the actor walks to.
CENTRES = ("first", "frame", "floor")
# What the image holds (the streams of 2s-AGCN, CTR-GCN and the authors' C-MANs), computed from the view-normalised
# rows before the time axis is fixed to S: "joint" the positions (the paper's); "bone" each joint minus its parent
# along the dataset's bones (`JointLayout.parents`; the root's row is zero); "motion" the difference of consecutive
# recorded frames (x[t + 1] - x[t], the last frame's zero), divided by the time between them where the time axis
# follows the capture times (`--frames timed`: a velocity; UT-Kinect's camera skips 1 to 9 frames between samples).
MODALITIES = ("joint", "bone", "motion")
# The unit of the coordinates: "none" keeps the recording's (metres for a Kinect, the demo's); "torso" (ours)
# divides every coordinate by the actor's torso length (`torso_length`), so a child and an adult doing the same
# action give the same image (the body-size normalisation of skeleton methods for cross-subject protocols).
SCALES = ("none", "torso")
NUM_JOINTS = 25
MAX_BODIES = 2
TORSO = (0, 1, 4, 8, 12, 16, 20)  # spine base, spine mid, shoulders, hips, spine shoulder
LEFT_HIP, RIGHT_HIP = 12, 16
LEFT_SHOULDER = 4
LEFT_ANKLE, LEFT_FOOT, RIGHT_ANKLE, RIGHT_FOOT = 14, 15, 18, 19


# Left / right twins of Kinect's joints (v1's 20 and v2's first 20 share indices): shoulder, elbow, wrist,
# hand, hip, knee, ankle, foot; Kinect v2 adds the hand tips and thumbs.
KINECT_V1_MIRROR = ((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19))
KINECT_V2_MIRROR = (*KINECT_V1_MIRROR, (21, 23), (22, 24))


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The choices of steps 2-6 that make a file's images: recorded in its attrs and repeated by everything that
    preprocesses a recording for its checkpoint (`mans.evaluation.score.Predictor`, `mans.evaluation.stream`).

    mode: MODES; frames: the time axis to S rows, FRAMES; signs: the sign fixes, SIGNS; centre: the origin, CENTRES;
    modality: what the image holds, MODALITIES; scale: the unit of the coordinates, SCALES. The defaults are the
    authors' demo. Raises ValueError naming the
    setting for a value outside its choices.
    """

    mode: str = "faithful"
    frames: str = "pad"
    signs: str = "demo"
    centre: str = "first"
    modality: str = "joint"
    scale: str = "none"

    def __post_init__(self) -> None:
        choices_of = (("mode", MODES), ("frames", FRAMES), ("signs", SIGNS), ("centre", CENTRES),
                      ("modality", MODALITIES), ("scale", SCALES))
        for name, choices in choices_of:
            if getattr(self, name) not in choices:
                raise ValueError(f"expected {name} among {list(choices)}, found {getattr(self, name)!r}")

    @classmethod
    def from_attrs(cls, attrs) -> Preprocessing:
        """The record of a file's (or a run record's) attrs; a choice the file predates takes the demo's."""
        return cls(**{field.name: str(attrs.get(field.name, field.default)) for field in dataclasses.fields(cls)})

    def attrs(self) -> dict[str, str]:
        """The record as the attrs a file stores: {"mode": ..., "frames": ..., "signs": ..., "centre": ...,
        "modality": ..., "scale": ...}."""
        return dataclasses.asdict(self)


DEMO = Preprocessing()  # every step as the authors' demo does it


@dataclasses.dataclass(frozen=True)
class JointLayout:
    """The joints of one body, how many bodies a row holds, and the joints the view normalisation uses.

    torso: the joints of the PCA up axis (z in 3D). origin: the joints whose mean is the origin. hips: (left,
    right), the hip vector of the y axis and of the x sign check. up: the joint whose up coordinate must be
    positive in the first row (z sign check). feet: (ankle, foot) pairs of the y sign check (3D only).
    mirror: the (left, right) joint pairs that trade places in a mirror image. dims: 3 (x y z) or 2 (image
    x y, with a score or 1 in the third channel; see `view_frame_2d`). parents: each joint's parent along the
    bones, the root its own (`parents_from_bones`); the bone modality needs them. All 0-based joint indices of one
    body.
    """

    num_joints: int = NUM_JOINTS
    max_bodies: int = MAX_BODIES
    torso: tuple[int, ...] = TORSO
    mirror: tuple[tuple[int, int], ...] = KINECT_V2_MIRROR
    origin: tuple[int, ...] = (LEFT_HIP, RIGHT_HIP)
    hips: tuple[int, int] = (LEFT_HIP, RIGHT_HIP)
    up: int = LEFT_SHOULDER
    feet: tuple[tuple[int, int], ...] = ((LEFT_ANKLE, LEFT_FOOT), (RIGHT_ANKLE, RIGHT_FOOT))
    dims: int = 3
    parents: tuple[int, ...] | None = None

    @property
    def columns(self) -> int:
        return self.num_joints * self.max_bodies


def parents_from_bones(bones, num_joints: int, root: int) -> tuple[int, ...]:
    """Each joint's parent: its neighbour on the way to `root` along the (undirected) bones; a joint no bone
    reaches is its own parent, as the root is."""
    neighbours: dict[int, list[int]] = {joint: [] for joint in range(num_joints)}
    for a, b in bones:
        neighbours[a].append(b)
        neighbours[b].append(a)
    parents = list(range(num_joints))
    reached, frontier = {root}, [root]
    while frontier:
        joint = frontier.pop(0)
        for neighbour in neighbours[joint]:
            if neighbour not in reached:
                reached.add(neighbour)
                parents[neighbour] = joint
                frontier.append(neighbour)
    return tuple(parents)


# NTU RGB+D (Kinect v2) bones, 0-based as docs/paper.md lists them.
NTU_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 20), (20, 2), (2, 3), (20, 4), (4, 5), (5, 6), (6, 7), (7, 21), (7, 22), (20, 8), (8, 9),
    (9, 10), (10, 11), (11, 23), (11, 24), (0, 12), (12, 13), (13, 14), (14, 15), (0, 16), (16, 17),
    (17, 18), (18, 19),
)  # fmt: skip
# Kinect v1 (UT-Kinect): Kinect v2's joints 0-19 with the shoulder centre (2) where v2 has the spine
# shoulder (20) and the neck: the spine runs 0-1-2-3 and the arms hang from joint 2.
KINECT_V1_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (6, 7), (2, 8), (8, 9), (9, 10), (10, 11), (0, 12),
    (12, 13), (13, 14), (14, 15), (0, 16), (16, 17), (17, 18), (18, 19),
)  # fmt: skip
NTU_LAYOUT = JointLayout(parents=parents_from_bones(NTU_BONES, NUM_JOINTS, 0))
KINECT_V1_LAYOUT = JointLayout(num_joints=20, max_bodies=1, torso=(0, 1, 4, 8, 12, 16, 2), mirror=KINECT_V1_MIRROR,
                               parents=parents_from_bones(KINECT_V1_BONES, 20, 0))


def modality_rows(
    rows: np.ndarray, modality: str, layout: JointLayout, times: np.ndarray | None = None
) -> np.ndarray:
    """The (T, columns, 3) view-normalised rows as the modality's rows (MODALITIES): unchanged for "joint".

    times: the rows' increasing capture times where the time axis follows them (`--frames timed`): the motion is
    then a velocity, each difference divided by its time step, so that a sample the camera skipped does not double
    it; None: a difference per recorded step."""
    if modality == "joint":
        return rows
    if modality == "motion":
        return _motion_rows(rows, layout, times)
    if layout.parents is None or list(layout.parents) == list(range(layout.num_joints)):
        raise ValueError("the bone modality needs the dataset's bones (a description's 'bones')")
    parents = np.asarray(layout.parents)
    columns = np.concatenate([body * layout.num_joints + parents for body in range(layout.max_bodies)])
    bones = rows - rows[:, columns]
    if layout.dims == 2:
        bones[..., 2] = rows[..., 2]  # the third channel of 2D keypoints is a score, not a coordinate
    return bones


def _motion_rows(rows: np.ndarray, layout: JointLayout, times: np.ndarray | None) -> np.ndarray:
    motion = np.zeros_like(rows)
    motion[:-1] = rows[1:] - rows[:-1]
    if times is not None:
        motion[:-1] /= np.diff(np.asarray(times, np.float64))[:, None, None]
    if layout.dims == 2:
        motion[..., 2] = rows[..., 2]  # the third channel of 2D keypoints is a score, not a coordinate
    return motion


def mirror_columns(layout: JointLayout, size: int) -> list[int]:
    """For each of the S image columns, the column of its mirror twin (itself for centre joints and padding).

    The joint columns sit centred in S as `to_fixed_length` pads them: body b's joint j at
    (S - columns) // 2 + b * num_joints + j.
    """
    twin = list(range(layout.num_joints))
    for left, right in layout.mirror:
        twin[left], twin[right] = right, left
    offset = (size - layout.columns) // 2
    columns = list(range(size))
    for body in range(layout.max_bodies):
        for joint in range(layout.num_joints):
            columns[offset + body * layout.num_joints + joint] = offset + body * layout.num_joints + twin[joint]
    return columns




def pca_first_axis(points: np.ndarray) -> np.ndarray:
    """First principal axis of `points` (n, 3), signed as scikit-learn 0.19's PCA signs it.

    The demo ran `PCA(n_components=3).fit(points).components_[0]`. scikit-learn 0.19 flips each
    component so that the mean-centred point with the largest-magnitude projection projects
    positively (the first such point on a tie, `svd_flip(u_based_decision=True)`); scikit-learn 1.5+
    uses another rule, so the axis is computed here with numpy's SVD and the demo's rule.
    Returns: (3,) unit vector, float64.
    """
    centred = np.asarray(points, np.float64) - np.mean(points, axis=0, dtype=np.float64)
    u, _, vt = np.linalg.svd(centred, full_matrices=False)  # u: (n, 3), projections / singular values
    return pca_sign(u[:, 0]) * vt[0]


def pca_sign(projections: np.ndarray) -> float:
    """-1.0 if the largest-magnitude entry (the first on a tie) is negative, else 1.0 (scikit-learn 0.19)."""
    return -1.0 if projections[int(np.argmax(np.abs(projections)))] < 0 else 1.0


def view_frame(
    joints: np.ndarray,
    torso: tuple[int, ...] = TORSO,
    origin: tuple[int, ...] = (LEFT_HIP, RIGHT_HIP),
    hips: tuple[int, int] = (LEFT_HIP, RIGHT_HIP),
) -> tuple[np.ndarray, np.ndarray]:
    """The demo's body-centred coordinate frame from one frame's joints (J, 3).

    Origin o = mean of the `origin` joints (the demo: the midpoint of the hips 12, 16); z = first principal
    axis of the torso joints minus o; y = (left hip - right hip) x z; x = y x z; all normalised.
    Returns: (R, o): R (3, 3) with columns x, y, z; o (3,); float64. Raises SampleSkipped
    ("degenerate-body") when an axis is undefined.
    """
    joints = np.asarray(joints, np.float64)
    centre = joints[list(origin)].sum(axis=0) / len(origin)  # two hips: exactly (a + b) / 2, the demo's
    z = pca_first_axis(joints[list(torso)] - centre)
    y = _cross(joints[hips[0]] - joints[hips[1]], z)
    x = _cross(y, z)
    axes = np.stack([x, y, z], axis=1)  # (3, 3), columns x y z
    norms = np.linalg.norm(axes, axis=0)
    if not np.all(norms > 1e-12):
        raise SampleSkipped("degenerate-body", f"view axes undefined (axis norms {norms.tolist()})")
    return axes / norms, centre


def view_frame_2d(joints: np.ndarray, layout: JointLayout) -> tuple[np.ndarray, np.ndarray, float]:
    """The image-plane version of `view_frame` for 2D keypoints (J, 3) of x, y, score.

    Only the joints seen (score > 0) count. Origin o = mean of the `origin` joints; the up axis = first
    principal axis of the torso joints minus o (signed as `pca_first_axis`); x = the up axis turned by -90
    degrees; scale = the mean distance of the torso joints from o, so that pixels of any camera become body
    units (3D keeps metres and has no such step).
    Returns: (R, o, scale): R (2, 2) with columns x, up; o (2,); scale > 0. Raises SampleSkipped
    ("degenerate-body") with fewer than 2 torso joints or no origin joint seen, or coincident torso joints.
    """
    joints = np.asarray(joints, np.float64)
    seen = joints[:, 2] > 0
    torso = [j for j in layout.torso if seen[j]]
    origin = [j for j in layout.origin if seen[j]]
    if len(torso) < 2 or not origin:
        raise SampleSkipped("degenerate-body", f"expected 2 torso joints and an origin joint seen, found {len(torso)}"
                            f" and {len(origin)}")
    xy = joints[:, :2]
    centre = xy[origin].sum(axis=0) / len(origin)
    scale = float(np.mean(np.linalg.norm(xy[torso] - centre, axis=1)))
    if not scale > 1e-12:
        raise SampleSkipped("degenerate-body", "view axes undefined (the torso joints coincide)")
    up = pca_first_axis(xy[torso] - centre)
    return np.stack([np.array([up[1], -up[0]]), up], axis=1), centre, scale  # columns x, up


def body_rows(reference: np.ndarray, joints: np.ndarray, layout: JointLayout) -> np.ndarray:
    """A body's (n, J, 3) joints in the view frame of its `reference` (J, 3) joints: x y z, or for 2D keypoints
    x, up (in body units) and the score, zeros where a joint is not seen."""
    if layout.dims == 3:
        rotation, origin = view_frame(reference, layout.torso, layout.origin, layout.hips)
        return view_transform(joints, rotation, origin)
    rotation, origin, scale = view_frame_2d(reference, layout)
    joints = np.asarray(joints, np.float64)
    seen = joints[..., 2:] > 0  # (n, J, 1)
    plane = (joints[..., :2] - origin) @ rotation / scale  # (n, J, 2): projections on x and up
    return np.where(seen, np.concatenate([plane, joints[..., 2:]], axis=-1), 0.0)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a x b of two 3-vectors (np.cross costs ~50 us of argument handling per call)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def view_transform(joints: np.ndarray, rotation: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """p -> R^-1 (p - o) for every joint: (..., 3) -> (..., 3) float64, one matrix product over all frames."""
    inverse = np.linalg.inv(rotation)
    return (np.asarray(joints, np.float64) - origin) @ inverse.T  # (..., 3) rows: (R^-1 d)^T = d^T R^-T


def fix_signs(rows: np.ndarray, layout: JointLayout | None = None, signs: str = "demo") -> np.ndarray:
    """The sign fixes on (T, columns, 3) rows (step 5); means run over all T rows, empty ones included.

    signs "demo", the authors': z is negated if z of joint 4 (left shoulder; the layout's `up`) at frame 0 < 0;
    y if mean y of joint 15 - joint 14 < 0 or mean y of joint 19 - joint 18 < 0 (the layout's `feet`); x if mean
    x of joint 16 - joint 12 < 0 (the layout's `hips`, right minus left). A 3D layout without feet negates y
    together with z. 2D keypoints: the up channel is y (1), no y test, and the score channel is left alone.
    The fixes undo a flipped PCA axis u (y and z negated) of body 0, except where docs/paper.md says
    (frame 0 without body 0: z stays flipped; body 1's own u is not looked at) and, because the y
    test is an "or", when the two legs disagree: y is then negated for either sign of u.
    signs "rigid": only the up test, and it negates the up channel together with the other one that the flipped
    PCA axis negated (y in 3D, x in 2D), so that the view normalisation stays a rotation. Returns a copy.
    """
    layout = layout or NTU_LAYOUT
    if signs not in SIGNS:
        raise ValueError(f"expected signs among {list(SIGNS)}, found {signs!r}")
    rows = np.array(rows, copy=True)
    up = 2 if layout.dims == 3 else 1
    flip_up = rows[0, layout.up, up] < 0
    if signs == "rigid":
        if flip_up:
            rows[..., up - 1 : up + 1] *= -1  # 3D: y and z; 2D: x and up
        return rows
    mean = rows.mean(axis=0)  # (columns, 3)
    if flip_up:
        rows[..., up] *= -1
    if layout.dims == 3 and layout.feet:
        if any(mean[foot, 1] - mean[ankle, 1] < 0 for ankle, foot in layout.feet):
            rows[..., 1] *= -1
    elif layout.dims == 3 and flip_up:
        rows[..., 1] *= -1  # no feet to look at: a flipped PCA axis negated y with z (y = hips x z), undo both
    left, right = layout.hips
    if mean[right, 0] - mean[left, 0] < 0:
        rows[..., 0] *= -1
    return rows


def centre_frames(rows: np.ndarray, layout: JointLayout | None = None, keep_height: bool = False) -> np.ndarray:
    """(T, columns, 3) rows with each frame's origin at the mean of the layout's `origin` joints of its first body
    present; every body of the frame is moved by the same vector, so two actors keep their relative place.

    keep_height: move only along the horizontal channels (all but the up channel: z in 3D, y in 2D), so the
    height of the hips above the first frame's stays in the image. Absent bodies (zero rows) stay zero. 2D
    keypoints: only the joints seen move, by the mean of the origin joints seen; a frame without one keeps its
    origin, and the score channel is left alone. Returns a float64 copy.
    """
    layout = layout or NTU_LAYOUT
    dims = layout.dims
    bodies = np.array(rows, np.float64).reshape(len(rows), layout.max_bodies, layout.num_joints, 3)
    if dims == 3:
        present = np.any(bodies != 0, axis=(2, 3))  # (T, B)
        moves = np.broadcast_to(present[:, :, None], bodies.shape[:3])  # (T, B, J): a present body moves whole
    else:
        moves = bodies[..., 2] > 0  # (T, B, J): the joints seen
        present = moves.any(axis=2)
    frame, first = np.arange(len(bodies)), np.argmax(present, axis=1)  # first: (T,) the first body present
    counted = moves[frame, first][:, list(layout.origin), None]  # (T, n, 1): its origin joints that count
    origin = bodies[frame, first][:, list(layout.origin), :dims]  # (T, n, dims)
    centre = (origin * counted).sum(axis=1) / np.maximum(counted.sum(axis=1), 1)  # (T, dims); none: 0
    if keep_height:
        centre[:, dims - 1] = 0.0  # the up channel: z in 3D, y in 2D
    bodies[..., :dims] -= np.where(moves[..., None], centre[:, None, None, :], 0.0)
    return bodies.reshape(np.shape(rows))


def to_fixed_length(array: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """Zero-pad or sample `axis` to `size` entries (step 6).

    Fewer entries n: floor((size - n) / 2) zero entries before, the rest after. More: the entries at
    np.linspace(0, n - 1, size).astype(int). Equal: unchanged.
    """
    array = np.asarray(array)
    n = array.shape[axis]
    if n > size:
        return np.take(array, np.linspace(0, n - 1, size).astype(int), axis=axis)
    if n < size:
        before = (size - n) // 2
        widths = [(0, 0)] * array.ndim
        widths[axis] = (before, size - n - before)
        return np.pad(array, widths)
    return array


def resample_rows(rows: np.ndarray, size: int, times: np.ndarray | None = None) -> np.ndarray:
    """(T, ...) rows linearly interpolated at `size` evenly spaced positions from the first to the last row, or,
    given the rows' increasing capture `times` (T,), at `size` instants evenly spaced from the first to the last."""
    rows = np.asarray(rows, np.float64)
    if len(rows) == 1:
        return np.repeat(rows, size, axis=0)
    position = row_positions(len(rows), size, times)
    low = np.minimum(np.floor(position).astype(int), len(rows) - 2)
    weight = (position - low).reshape(-1, *([1] * (rows.ndim - 1)))
    return rows[low] * (1 - weight) + rows[low + 1] * weight


def row_positions(count: int, size: int, times: np.ndarray | None = None) -> np.ndarray:
    """(size,) fractional positions among `count` rows of `size` points evenly spaced from the first row to the
    last: evenly in rows, or, given the rows' increasing capture `times` (count,), evenly in time."""
    if times is None:
        return np.linspace(0, count - 1, size)
    times = np.asarray(times, np.float64)
    if times.shape != (count,):
        raise ValueError(f"expected {count} frame times, found shape {times.shape}")
    backwards = np.count_nonzero(np.diff(times) <= 0)
    if backwards:
        raise ValueError(f"expected increasing frame times, found {backwards} repeated or going back")
    return np.interp(np.linspace(times[0], times[-1], size), times, np.arange(count, dtype=np.float64))


def _check(skel) -> None:
    if skel.num_frames == 0:
        raise SampleSkipped("zero-frames", "expected at least 1 frame, found 0")
    if int(np.max(skel.body_counts)) == 0:
        raise SampleSkipped("no-body", f"expected a body in some frame, found none in {skel.num_frames}")


def faithful_rows(skel, layout: JointLayout = NTU_LAYOUT) -> np.ndarray:
    """Steps 2-4 and 7 of the demo: (F, columns, 3) float64 rows, zeros where a body or frame is absent."""
    _check(skel)
    max_bodies = layout.max_bodies
    counts = np.asarray(skel.body_counts)
    if counts[-1] > max_bodies:
        raise SampleSkipped(
            "last-frame-3+bodies",
            f"faithful mode keeps a sample only if its last frame lists <= {max_bodies} bodies (the demo's step 7), "
            f"found {counts[-1]}; --mode denoised keeps it",
        )
    usable = (counts >= 1) & (counts <= max_bodies)
    if not usable.any():
        raise SampleSkipped("no-usable-frame", f"expected a frame listing 1 to {max_bodies} bodies, found none")
    rows = np.zeros((len(counts), max_bodies, layout.num_joints, 3), np.float64)
    for body in range(min(max_bodies, skel.coords.shape[1])):
        present = usable & (counts > body)
        if not present.any():
            continue
        reference = int(np.argmax(present))  # first frame with 1-2 bodies listing this index
        rows[present, body] = body_rows(skel.coords[reference, body], skel.coords[present, body], layout)
    return rows.reshape(len(counts), layout.columns, 3)  # (F, bodies * joints, 3)


def sequence_rows(sequence: DenoisedSequence, layout: JointLayout = NTU_LAYOUT) -> np.ndarray:
    """A denoised sequence view-normalised: (T, columns, 3) float64 rows, zeros where an actor is absent.

    Each actor (slot) gets the view frame of its own first row with joints, applied to all its rows.
    """
    joints = sequence.joints[:, : layout.max_bodies]  # (T, bodies, J, 3)
    rows = np.zeros((len(joints), layout.max_bodies, layout.num_joints, 3), np.float64)
    for actor in range(joints.shape[1]):
        present = np.any(joints[:, actor] != 0, axis=(1, 2))  # (T,)
        if not present.any():
            continue
        rows[present, actor] = body_rows(joints[int(np.argmax(present)), actor], joints[present, actor], layout)
    return rows.reshape(len(joints), layout.columns, 3)  # (T, bodies * joints, 3)


def _denoise(skel) -> DenoisedSequence:
    _check(skel)
    try:
        return denoise_skeleton(skel)
    except DenoiseError as error:
        raise SampleSkipped(error.reason, str(error)) from None


def denoised_rows(skel, layout: JointLayout = NTU_LAYOUT) -> np.ndarray:
    """Denoised mode before the sign fixes: (T, columns, 3) float64 rows, T <= F."""
    return sequence_rows(_denoise(skel), layout)


def check_size(size: int, layout: JointLayout = NTU_LAYOUT) -> None:
    """ValueError unless S holds the layout's joint columns (50 for NTU's two bodies of 25 joints)."""
    if size < layout.columns:
        raise ValueError(
            f"expected size >= {layout.columns} (the joint columns of {layout.max_bodies} x {layout.num_joints} "
            f"joints), found {size}"
        )


def normalised_rows(skel, preprocessing: Preprocessing = DEMO, layout: JointLayout = NTU_LAYOUT) -> np.ndarray:
    """Steps 2-5: the view-normalised, sign-fixed (T, columns, 3) float64 rows before the fixed length (and
    `centre_frames` applied where the centre is "frame").

    T is the recording's frame count in faithful mode and its frames with a kept body in denoised mode.
    Raises: SampleSkipped with a `.reason`; ValueError for a coordinate shape the layout does not have.
    """
    return _rows_and_drops(skel, preprocessing, layout)[0]


def signed_and_centred(rows: np.ndarray, layout: JointLayout, preprocessing: Preprocessing) -> np.ndarray:
    """The view-normalised rows after the sign fixes (step 5), where the centre is "frame" or "floor"
    `centre_frames`, and where the scale is "torso" divided by `torso_length`."""
    rows = fix_signs(rows, layout, preprocessing.signs)
    if preprocessing.centre != "first":
        rows = centre_frames(rows, layout, keep_height=preprocessing.centre == "floor")
    if preprocessing.scale == "torso":
        rows = rows / torso_length(rows, layout)
    return rows


def torso_length(rows: np.ndarray, layout: JointLayout) -> float:
    """The median over the frames of the distance from the mean of the `origin` joints (the hips) to the `up`
    joint (a shoulder) of the first body, where that body is present; 1.0 where it cannot be measured."""
    body = np.asarray(rows, np.float64)[:, : layout.num_joints, : layout.dims]  # (T, J, dims) of body 0
    present = np.any(body != 0, axis=(1, 2))
    if not present.any():
        return 1.0
    hips = body[present][:, list(layout.origin)].mean(axis=1)
    length = float(np.median(np.linalg.norm(body[present][:, layout.up] - hips, axis=1)))
    return length if length > 1e-6 else 1.0


def image_from_rows(
    rows: np.ndarray, size: int, frames: str = "pad", times: np.ndarray | None = None
) -> np.ndarray:
    """Step 6: (T, columns, 3) rows -> the (size, size, 3) float32 image, time and joint columns fixed to S.

    times: the rows' capture times (`row_times`), used where `frames` is "timed"; None: evenly spaced.
    """
    if frames == "pad":
        fixed = to_fixed_length(rows, size, axis=0)
    else:
        fixed = resample_rows(rows, size, _times_used(frames, times))
    return to_fixed_length(fixed, size, axis=1).astype(np.float32)


def _times_used(frames: str, times: np.ndarray | None) -> np.ndarray | None:
    """The capture times the time axis follows: the given ones where `frames` is "timed", else none."""
    return times if frames == "timed" else None


def row_times(skel, preprocessing: Preprocessing) -> np.ndarray | None:
    """The capture times of the rows `normalised_rows` gives (one a recorded frame in faithful mode), or None:
    no times recorded, or denoised mode, whose rows count its kept frames evenly."""
    return skel.times if preprocessing.mode == "faithful" else None


def fixed_length_sources(n: int, size: int, frames: str = "pad", times: np.ndarray | None = None) -> np.ndarray:
    """(size,) int64: the entry of `n` that each of the S rows holds (the nearest one where "resample" or "timed"
    interpolates), -1 for padding."""
    if frames in ("resample", "timed"):
        return np.rint(row_positions(n, size, _times_used(frames, times))).astype(np.int64)
    return to_fixed_length(np.arange(1, n + 1), size) - 1


def process_skeleton(
    skel,
    mode: str = "faithful",
    size: int = 50,
    layout: JointLayout = NTU_LAYOUT,
    frames: str = "pad",
    signs: str = "demo",
    centre: str = "first",
    modality: str = "joint",
) -> np.ndarray:
    """One recording -> the (size, size, 3) float32 image: rows = time, columns = joints, channels x y z.

    Args: skel: a `mans.formats.ntu.Skeleton` (coords (F, B, J, 3), body_counts (F,), body_ids (F, B)).
        mode: "faithful" or "denoised". size: S >= the layout's joint columns (50 for NTU).
        layout: the dataset's joints (NTU_LAYOUT or KINECT_V1_LAYOUT).
        frames: "pad" (the demo), "resample" (the recorded frames interpolated onto all S rows) or "timed" (the
            same at instants evenly spaced in time, where `skel.times` is given).
        signs: the sign fixes, "demo" (the authors') or "rigid" (`fix_signs`).
        centre: the origin, "first" (the demo's: each body's reference frame) or "frame" (`centre_frames`).
        modality: "joint" (the paper's), "bone" or "motion" (`modality_rows`).
    Raises: SampleSkipped with a `.reason`; ValueError for a bad mode, size, frames, signs or centre.
    """
    return image_and_drops(skel, Preprocessing(mode, frames, signs, centre, modality), size, layout)[0]


def image_and_drops(
    skel, preprocessing: Preprocessing, size: int, layout: JointLayout = NTU_LAYOUT
) -> tuple[np.ndarray, dict[int, str]]:
    """The image of `process_skeleton`, and the bodies denoised mode dropped as noise: {bodyID: rule} ({} in
    faithful mode)."""
    check_size(size, layout)
    rows, dropped = _rows_and_drops(skel, preprocessing, layout)
    return model_image(skel, rows, preprocessing, size, layout), dropped


def model_image(skel, rows: np.ndarray, preprocessing: Preprocessing, size: int, layout: JointLayout) -> np.ndarray:
    """The (size, size, 3) image a model reads from a recording's view-normalised `rows` (`normalised_rows`): its
    modality's rows fixed to S rows (step 6)."""
    times = row_times(skel, preprocessing)
    rows = modality_rows(rows, preprocessing.modality, layout, _times_used(preprocessing.frames, times))
    return image_from_rows(rows, size, preprocessing.frames, times)


def _rows_and_drops(skel, preprocessing: Preprocessing, layout: JointLayout) -> tuple[np.ndarray, dict[int, str]]:
    if skel.coords.shape[2:] != (layout.num_joints, 3):
        raise ValueError(f"expected coords of shape (F, B, {layout.num_joints}, 3), found {skel.coords.shape}")
    if preprocessing.mode == "faithful":
        return signed_and_centred(faithful_rows(skel, layout), layout, preprocessing), {}
    if layout.dims != 3:
        raise ValueError("denoised mode needs 3D joints (the rules measure spreads in metres); use --mode faithful")
    sequence = _denoise(skel)
    return signed_and_centred(sequence_rows(sequence, layout), layout, preprocessing), sequence.dropped
