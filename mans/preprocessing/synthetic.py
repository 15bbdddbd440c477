"""Synthetic NTU RGB+D recordings in the exact `.skeleton` text format (docs/paper.md).

Each action is a fixed motion program: a primary and a secondary degree of freedom of a small
kinematic body (shoulder, elbow, hip, knee, torso, whole-body translation), each driven by one of
ten waveforms; a handful of actions get a program that resembles their name (kick, wave, jump,
sit down, walk towards / apart). Two-person actions (50-60, 106-120) have a second actor facing the
first. Performers differ in size, proportions, posture, speed and amplitude; setups in camera
distance and height; cameras 1-3 see the scene rotated by -45, 0 and +45 degrees, and the actor
faces the left or right camera by replication, as in NTU. With `noise`, the files carry what the
Kinect adds: joint jitter, inferred joints, a spurious short body track with its own ID, empty frames
at the start or end, body-ID switches and swapped body order.

Every file is drawn from `numpy.random.default_rng((seed, index))`, so a dataset is the same for
any number of workers. About 8 ms of CPU per 100-frame file, mostly "%.7g" formatting (measured by
bench/bench_parse.py, which writes 500).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import pathlib

import numpy as np

from mans.formats.ntu import NUM_JOINTS, SampleName
from mans.preprocessing.datasets import TWO_PERSON_ACTIONS
from mans.preprocessing.splits import XSUB_TRAIN_PERFORMERS_60, XSUB_TRAIN_PERFORMERS_120

_DATASETS = {  # actions, setups, performers
    "ntu60": (60, 17, 40),
    "ntu120": (120, 32, 106),
}
CAMERA_ANGLES_DEG = {1: -45.0, 2: 0.0, 3: 45.0}  # NTU's three cameras, horizontal angles
BODY_ID_BASE = 72057594037927936  # 2**56: Kinect v2 body IDs look like 72057594037931101 (17 digits)

# Rest pose (metres, relative to the spine base, actor facing the camera along -z; +x = actor's left).
_REST = np.array(
    [
        (0.0, 0.0, 0.0),  # 0 spine base
        (0.0, 0.28, 0.01),  # 1 spine mid
        (0.0, 0.58, 0.0),  # 2 neck
        (0.0, 0.72, -0.01),  # 3 head
        (0.17, 0.47, 0.0),  # 4 left shoulder
        (0.21, 0.20, 0.01),  # 5 left elbow
        (0.23, -0.04, -0.01),  # 6 left wrist
        (0.24, -0.11, -0.01),  # 7 left hand
        (-0.17, 0.47, 0.0),  # 8 right shoulder
        (-0.21, 0.20, 0.01),  # 9 right elbow
        (-0.23, -0.04, -0.01),  # 10 right wrist
        (-0.24, -0.11, -0.01),  # 11 right hand
        (0.08, -0.03, 0.0),  # 12 left hip
        (0.09, -0.46, 0.0),  # 13 left knee
        (0.09, -0.86, 0.02),  # 14 left ankle
        (0.09, -0.91, -0.08),  # 15 left foot
        (-0.08, -0.03, 0.0),  # 16 right hip
        (-0.09, -0.46, 0.0),  # 17 right knee
        (-0.09, -0.86, 0.02),  # 18 right ankle
        (-0.09, -0.91, -0.08),  # 19 right foot
        (0.0, 0.50, 0.0),  # 20 spine shoulder
        (0.245, -0.18, -0.01),  # 21 left hand tip
        (0.22, -0.12, -0.04),  # 22 left thumb
        (-0.245, -0.18, -0.01),  # 23 right hand tip
        (-0.22, -0.12, -0.04),  # 24 right thumb
    ]
)
_PARENT = (1, 20, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11)
_LEAVES = (3, 15, 19, 21, 22, 23, 24)  # Kinect reports a zero orientation for these
_UPPER = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 20, 21, 22, 23, 24)
_ARM = {"left": (4, (5, 6, 7, 21, 22), (6, 7, 21, 22)), "right": (8, (9, 10, 11, 23, 24), (10, 11, 23, 24))}
_LEG = {"left": (12, (13, 14, 15), (14, 15)), "right": (16, (17, 18, 19), (18, 19))}
_EXTREMITIES = (7, 11, 15, 19, 21, 22, 23, 24)

# Degrees of freedom of the kinematic body and the amplitude an action drives them with.
DOFS = (
    "l_shoulder_flex", "l_shoulder_abd", "l_elbow", "r_shoulder_flex", "r_shoulder_abd", "r_elbow",
    "l_hip_flex", "r_hip_flex", "l_knee", "torso_bend", "torso_twist", "root_y", "root_x", "root_z",
)  # fmt: skip
_AMPLITUDE = dict(
    zip(DOFS, (2.2, 2.0, 1.9, 2.2, 2.0, 1.9, 1.1, 1.1, 1.5, 0.8, 0.7, 0.25, 0.45, 0.8), strict=True)
)
WAVEFORMS = ("bump", "ramp_up", "ramp_down", "pulse2", "pulse4", "swing", "twin_bump", "plateau",
             "tremor", "growing")  # fmt: skip

# Programs that resemble the action's name: {action: ((dof, waveform, relative amplitude), ...)}.
_NAMED_PROGRAMS = {
    8: (("root_y", "ramp_up", -1.6), ("l_knee", "ramp_up", 1.0), ("torso_bend", "bump", 0.5)),  # sit down
    9: (("root_y", "ramp_down", -1.6), ("l_knee", "ramp_down", 1.0), ("torso_bend", "bump", 0.5)),  # stand up
    23: (("r_shoulder_abd", "plateau", 1.0), ("r_elbow", "tremor", 0.5)),  # hand waving
    24: (("r_hip_flex", "bump", 1.0), ("l_knee", "bump", 0.2)),  # kicking something
    27: (("root_y", "twin_bump", 1.0), ("l_shoulder_abd", "twin_bump", 0.3)),  # jump up
    59: (("root_z", "ramp_up", 0.55),),  # walking towards each other
    60: (("root_z", "ramp_up", -0.55),),  # walking apart from each other
}


@dataclasses.dataclass(frozen=True)
class Performer:
    """Body size, proportions, posture and tempo of one performer (fixed by the performer number)."""

    scale: float
    arm: float
    leg: float
    shoulders: float
    speed: float
    vigour: float
    posture: np.ndarray  # (len(DOFS),) constant offsets (rad / m)


def performer_traits(performer: int) -> Performer:
    rng = np.random.default_rng((7919, performer))
    posture = rng.normal(0.0, 0.06, len(DOFS))
    posture[DOFS.index("root_x") :] = 0.0  # no constant translation
    return Performer(
        scale=rng.uniform(1.55, 1.90) / 1.75,
        arm=rng.uniform(0.92, 1.08),
        leg=rng.uniform(0.92, 1.08),
        shoulders=rng.uniform(0.9, 1.1),
        speed=rng.uniform(0.8, 1.25),
        vigour=rng.uniform(0.8, 1.15),
        posture=posture,
    )


def action_program(action: int, actor: int = 0) -> tuple[tuple[str, str, float], ...]:
    """The (dof, waveform, relative amplitude) terms that drive `actor` (0 or 1) in `action`."""
    if action in _NAMED_PROGRAMS:
        return _NAMED_PROGRAMS[action]
    index = action - 1 + 37 * actor  # the second actor gets another program
    primary = DOFS[index % len(DOFS)]
    wave = WAVEFORMS[(index + index // len(DOFS)) % len(WAVEFORMS)]
    rng = np.random.default_rng((104729, action, actor))
    secondary = DOFS[(index + 1 + rng.integers(len(DOFS) - 1)) % len(DOFS)]
    return (primary, wave, 1.0), (secondary, WAVEFORMS[rng.integers(len(WAVEFORMS))], 0.35)


def waveform(name: str, s: np.ndarray, speed: float = 1.0) -> np.ndarray:
    """Waveform `name` at normalised time s in [0, 1]; `speed` scales the number of cycles."""
    ramp = np.clip((s - 0.2) / 0.4, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
    cycles = {"pulse2": 2, "pulse4": 4, "tremor": 6}
    if name == "bump":
        return np.sin(np.pi * s) ** 2
    if name == "ramp_up":
        return ramp
    if name == "ramp_down":
        return 1.0 - ramp
    if name in cycles:
        scale = 0.4 if name == "tremor" else 1.0
        return scale * 0.5 * (1 - np.cos(2 * np.pi * cycles[name] * speed * s))
    if name == "swing":
        return np.sin(2 * np.pi * 1.5 * speed * s)
    if name == "twin_bump":
        return np.sin(2 * np.pi * s) ** 2
    if name == "plateau":
        return np.clip(np.minimum(s, 1 - s) / 0.2, 0.0, 1.0)
    if name == "growing":
        return s * 0.5 * (1 - np.cos(2 * np.pi * 3 * speed * s))
    raise ValueError(f"unknown waveform {name!r}; expected one of {WAVEFORMS}")


def _rot_x(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([one, zero, zero, zero, c, -s, zero, s, c], -1).reshape(*c.shape, 3, 3)


def _rot_y(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).reshape(*c.shape, 3, 3)


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(c), np.zeros_like(c)
    return np.stack([c, -s, zero, s, c, zero, zero, zero, one], -1).reshape(*c.shape, 3, 3)


def _rotate_about(pose: np.ndarray, joints, pivot: int, rot: np.ndarray) -> None:
    """In place: turn `joints` of pose (T, 25, 3) about joint `pivot` by rot (T, 3, 3)."""
    joints = list(joints)
    centre = pose[:, pivot : pivot + 1]  # (T, 1, 3)
    pose[:, joints] = np.einsum("tij,tkj->tki", rot, pose[:, joints] - centre) + centre


def _rest_pose(traits: Performer) -> np.ndarray:
    rest = _REST.copy()
    for side in ("left", "right"):
        shoulder, arm, _ = _ARM[side]
        rest[list(arm)] = rest[shoulder] + (rest[list(arm)] - rest[shoulder]) * traits.arm
        hip, leg, _ = _LEG[side]
        rest[list(leg)] = rest[hip] + (rest[list(leg)] - rest[hip]) * traits.leg
    rest[[4, 8]] *= (traits.shoulders, 1.0, 1.0)
    return rest * traits.scale


def pose_sequence(dofs: np.ndarray, traits: Performer) -> np.ndarray:
    """Forward kinematics: dofs (T, len(DOFS)) -> joints (T, 25, 3) in the actor's frame (facing -z)."""
    d = dict(zip(DOFS, dofs.T, strict=True))
    pose = np.broadcast_to(_rest_pose(traits), (len(dofs), NUM_JOINTS, 3)).copy()
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder, arm, forearm = _ARM[side]
        elbow = arm[0]
        prefix = side[0]
        _rotate_about(pose, forearm, elbow, _rot_x(d[f"{prefix}_elbow"]))
        lift = _rot_z(sign * d[f"{prefix}_shoulder_abd"]) @ _rot_x(d[f"{prefix}_shoulder_flex"])
        _rotate_about(pose, arm, shoulder, lift)
        hip, leg, shank = _LEG[side]
        knee = d["l_knee"] if side == "left" else 0.3 * d["l_knee"]
        _rotate_about(pose, shank, leg[0], _rot_x(-knee))
        _rotate_about(pose, leg, hip, _rot_x(d[f"{prefix}_hip_flex"]))
    torso = _rot_y(d["torso_twist"]) @ _rot_x(-d["torso_bend"])
    _rotate_about(pose, _UPPER, 0, torso)
    pose += np.stack([d["root_x"], d["root_y"], -d["root_z"]], -1)[:, None, :]  # (T, 1, 3)
    return pose


def _dof_tracks(action: int, actor: int, traits: Performer, frames: int, rng) -> np.ndarray:
    """(frames, len(DOFS)) joint angles / offsets over time for one actor."""
    start, stop = rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0)
    s = np.clip((np.arange(frames) / max(frames - 1, 1) - start) / (stop - start), 0.0, 1.0)
    tracks = np.tile(traits.posture, (frames, 1))
    tempo = traits.speed * rng.uniform(0.9, 1.1)
    for dof, wave, weight in action_program(action, actor):
        amplitude = _AMPLITUDE[dof] * weight * traits.vigour * rng.uniform(0.9, 1.1)
        tracks[:, DOFS.index(dof)] += amplitude * waveform(wave, s, tempo)
    tracks[:, : DOFS.index("root_y")] += rng.normal(0.0, 0.01, (frames, DOFS.index("root_y")))  # sway
    return tracks


@dataclasses.dataclass
class Track:
    """One body as the sensor lists it: which frames, which ID, where its joints are."""

    frames: np.ndarray  # (T,) bool, listed in this frame
    ids: np.ndarray  # (T,) int64 offsets from BODY_ID_BASE
    joints: np.ndarray  # (T, 25, 3) camera space, metres
    tracking: np.ndarray  # (T, 25) 0 / 1 / 2
    lean: np.ndarray  # (T, 2) leanX leanY
    hands: tuple[int, int, int, int]  # handLeftConfidence handLeftState handRightConfidence handRightState


def _camera(name: SampleName, rng) -> tuple[np.ndarray, np.ndarray]:
    """Scene -> camera: rotation (3, 3) about the vertical axis and the translation (3,)."""
    setup_rng = np.random.default_rng((31, name.setup))
    distance, height = setup_rng.uniform(2.5, 3.5), setup_rng.uniform(0.9, 1.3)
    angle = np.deg2rad(CAMERA_ANGLES_DEG.get(name.camera, 0.0) + rng.normal(0.0, 2.0))
    return _rot_y(np.array(angle)), np.array([0.0, -height, distance])


def _actor_joints(name: SampleName, actor: int, two: bool, frames: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(T, 25, 3) scene coordinates (floor at y = 0) and (T, 2) lean of one actor."""
    traits = performer_traits(name.performer + 1000 * actor)
    dofs = _dof_tracks(name.action, actor, traits, frames, rng)
    pose = pose_sequence(dofs, traits)
    if two:
        yaw = np.deg2rad(-90.0 if actor == 0 else 90.0) + rng.normal(0.0, 0.15)
        place = np.array([-0.6 if actor == 0 else 0.6, 0.0, 0.0])
    else:
        yaw = np.deg2rad(-30.0 if name.replication % 2 else 30.0) + rng.normal(0.0, 0.1)
        place = np.zeros(3)
    place = place + rng.normal(0.0, 0.1, 3) * (1.0, 0.0, 1.0)
    place[1] = -_rest_pose(traits)[14, 1]  # ankles on the floor
    scene = pose @ _rot_y(np.array(yaw)).T + place
    twist, bend = dofs[:, DOFS.index("torso_twist")], dofs[:, DOFS.index("torso_bend")]
    lean = np.stack([np.sin(twist), np.sin(bend)], -1)  # (T, 2) leanX leanY
    return scene, lean


def _jitter(joints: np.ndarray, tracking: np.ndarray, rng) -> None:
    """In place: sensor noise, larger at hands and feet and where a joint is only inferred."""
    sigma = np.full(NUM_JOINTS, 0.004)
    sigma[list(_EXTREMITIES)] = 0.012
    noise = rng.normal(0.0, 1.0, joints.shape) * sigma[:, None]
    noise *= np.where(tracking == 2, 1.0, 4.0)[..., None]
    joints += noise


def _tracking_states(frames: int, rng, inferred: float) -> np.ndarray:
    """(T, 25) mostly 2 (tracked); runs of 1 (inferred) and a few 0 at the extremities."""
    states = np.full((frames, NUM_JOINTS), 2, np.int8)
    for joint in rng.choice(_EXTREMITIES, size=rng.integers(0, 4), replace=False):
        begin = rng.integers(frames)
        states[begin : begin + rng.integers(3, 20), joint] = 1
    states[rng.random((frames, NUM_JOINTS)) < inferred] = 1
    states[rng.random((frames, NUM_JOINTS)) < inferred / 20] = 0
    return states


def _spurious_track(frames: int, rng) -> Track:
    """A short, noisy, nearly static 'body' (a chair, a passer-by) at the side of the camera's view."""
    length = min(frames, int(rng.integers(5, 26)))
    begin = int(rng.integers(0, frames - length + 1))
    listed = np.zeros(frames, bool)
    listed[begin : begin + length] = True
    depth = rng.uniform(2.0, 4.5)
    where = (rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 0.6) * depth, rng.uniform(-0.5, 0.0), depth)
    rest = _REST * rng.uniform(0.5, 0.9) + where  # inside the depth camera's field of view (x / z < 0.7)
    joints = np.broadcast_to(rest, (frames, NUM_JOINTS, 3)) + rng.normal(0.0, 0.05, (frames, NUM_JOINTS, 3))
    tracking = np.where(rng.random((frames, NUM_JOINTS)) < 0.6, 1, 2).astype(np.int8)
    ids = np.full(frames, rng.integers(1000, 99999), np.int64)
    return Track(listed, ids, joints, tracking, rng.normal(0.0, 0.2, (frames, 2)), _hands(rng))


def _hands(rng) -> tuple[int, int, int, int]:
    confidence, state = rng.integers(0, 2, 2), rng.integers(0, 5, 2)
    return int(confidence[0]), int(state[0]), int(confidence[1]), int(state[1])


def synthesize(name: SampleName, rng: np.random.Generator, *, frames: tuple[int, int] = (40, 300),
               noise: bool = True) -> tuple[list[Track], list[list[int]]]:  # fmt: skip
    """The body tracks of one recording and, per frame, the order in which the file lists them."""
    count = int(rng.integers(frames[0], frames[1] + 1))
    two = name.action in TWO_PERSON_ACTIONS
    rotation, shift = _camera(name, rng)
    tracks, actors = [], range(2 if two else 1)
    for actor in actors:
        scene, lean = _actor_joints(name, actor, two, count, rng)
        tracking = _tracking_states(count, rng, 0.02) if noise else np.full((count, NUM_JOINTS), 2, np.int8)
        joints = scene @ rotation.T + shift
        if noise:
            _jitter(joints, tracking, rng)
        ids = np.full(count, rng.integers(1000, 99999), np.int64)
        tracks.append(Track(np.ones(count, bool), ids, joints, tracking, lean, _hands(rng)))
    if noise:
        _add_sensor_artefacts(tracks, count, rng)
    order = [[k for k, track in enumerate(tracks) if track.frames[t]] for t in range(count)]
    if noise and len(tracks) > len(actors) and rng.random() < 0.3:  # a spurious body in a lower sensor slot
        order = [row[len(actors) :] + row[: len(actors)] if len(row) > len(actors) else row for row in order]
    if noise and two and rng.random() < 0.15:  # the sensor swaps its body slots mid-recording
        swap = int(rng.integers(count))
        order[swap:] = [row[1::-1] + row[2:] if len(row) >= 2 else row for row in order[swap:]]
    return tracks, order


def _add_sensor_artefacts(tracks: list[Track], count: int, rng) -> None:
    """In place: spurious bodies, empty first / last frames, a body-ID switch."""
    actor = tracks[0]
    for _ in range(rng.choice(3, p=(0.55, 0.35, 0.10))):
        tracks.append(_spurious_track(count, rng))
    head = int(rng.integers(1, 7)) if rng.random() < 0.3 else 0
    tail = int(rng.integers(1, 7)) if rng.random() < 0.3 else 0
    head, tail = (head, tail) if head + tail < count else (0, 0)
    for track in tracks:
        track.frames[:head] = False
        track.frames[count - tail :] = False
    if rng.random() < 0.15:  # tracking lost and re-acquired: the same actor gets a new ID
        actor.ids[int(rng.integers(head, count - tail)) :] = rng.integers(1000, 99999)


_JOINT_LINE = " ".join(["%.7g"] * 11) + " %d"
_BODY_FORMAT = "%d 0 %d %d %d %d 0 %.7g %.7g 2\r\n25\r\n" + "\r\n".join([_JOINT_LINE] * NUM_JOINTS) + "\r\n"


def _orientations(xyz: np.ndarray) -> np.ndarray:
    """(T, 25, 4) w x y z: a turn about +y by the body's yaw, then +y onto the bone from the parent joint."""
    bone = xyz - xyz[:, list(_PARENT)]
    bone /= np.maximum(np.linalg.norm(bone, axis=-1, keepdims=True), 1e-6)
    w, x, y, z = 1.0 + bone[..., 1], bone[..., 2], np.zeros_like(bone[..., 0]), -bone[..., 0]
    hips = xyz[:, 12] - xyz[:, 16]  # (T, 3) right hip -> left hip
    half_yaw = 0.5 * np.arctan2(-hips[:, 2], hips[:, 0])[:, None]  # (T, 1)
    c, s = np.cos(half_yaw), np.sin(half_yaw)
    quat = np.stack([w * c - y * s, x * c - z * s, w * s + y * c, z * c + x * s], -1)  # (w,x,y,z) * (c,0,s,0)
    quat /= np.maximum(np.linalg.norm(quat, axis=-1, keepdims=True), 1e-6)
    quat[:, list(_LEAVES)] = 0.0
    return quat


def _joint_fields(track: Track) -> np.ndarray:
    """(T, 25, 12): x y z, depth and colour pixels, orientation quaternion, tracking state."""
    xyz = track.joints
    z = np.maximum(xyz[..., 2], 0.3)
    depth = np.stack([256.0 + 365.5 * xyz[..., 0] / z, 212.0 - 365.5 * xyz[..., 1] / z], -1)
    colour = np.stack([960.0 + 1065.0 * (xyz[..., 0] + 0.052) / z, 540.0 - 1065.0 * xyz[..., 1] / z], -1)
    quat = _orientations(xyz)
    return np.concatenate([xyz, depth, colour, quat, track.tracking[..., None].astype(np.float64)], -1)


def format_skeleton(tracks: list[Track], order: list[list[int]]) -> str:
    """The `.skeleton` text (CRLF line ends) of tracks listed per frame in `order`."""
    fields = [_joint_fields(track).reshape(len(order), -1).tolist() for track in tracks]  # (T, 300) each
    parts = [f"{len(order)}\r\n"]
    for t, listed in enumerate(order):
        parts.append(f"{len(listed)}\r\n")
        for k in listed:
            track = tracks[k]
            info = (BODY_ID_BASE + int(track.ids[t]), *track.hands, *track.lean[t])
            parts.append(_BODY_FORMAT % (*info, *fields[k][t]))
    return "".join(parts)


def render_sample(name: SampleName | str, seed: int | tuple[int, ...] = 0, *, frames: tuple[int, int] = (40, 300),
                  noise: bool = True) -> str:  # fmt: skip
    """One file's text: the recording `name` drawn from numpy.random.default_rng(seed)."""
    if isinstance(name, str):
        from mans.formats.ntu import parse_sample_name

        name = parse_sample_name(name)
    if not 1 <= frames[0] <= frames[1]:
        raise ValueError(f"frames must be (lo, hi) with 1 <= lo <= hi, received: frames={frames}")
    tracks, order = synthesize(name, np.random.default_rng(seed), frames=frames, noise=noise)
    return format_skeleton(tracks, order)


def sample_names(samples: int, dataset: str = "ntu60", num_actions: int | None = None) -> list[SampleName]:
    """Names for a balanced dataset in which every benchmark split has train and test samples.

    Sample i has action a = i % K and repetition v = i // K. Per action, the cross-subject side
    alternates with v, the camera cycles through 1-3 and the setup parity (cross-setup) changes every
    second repetition, each with a phase that depends on a, so the sides differ between benchmarks
    and classes and even 50 samples over 60 actions fill both sides of every split.
    """
    if dataset not in _DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(_DATASETS)}")
    max_actions, setups, performers = _DATASETS[dataset]
    num_actions = max_actions if num_actions is None else num_actions
    if not 1 <= num_actions <= max_actions:
        raise ValueError(f"num_actions must be in 1..{max_actions} for {dataset}, received: {num_actions}")
    train_set = XSUB_TRAIN_PERFORMERS_60 if dataset == "ntu60" else XSUB_TRAIN_PERFORMERS_120
    sides = (sorted(train_set), sorted(set(range(1, performers + 1)) - train_set))
    parities = (list(range(2, setups + 1, 2)), list(range(1, setups + 1, 2)))  # even setups train (xset)
    names, seen = [], set()
    for i in range(samples):
        a, v = i % num_actions, i // num_actions
        people = sides[(a + v) % 2]
        setup_list = parities[(a // 2 + (v + 1) // 2) % 2]
        name = SampleName(
            setup=setup_list[(3 * a + v // 4) % len(setup_list)],
            camera=1 + (a + 2 * v) % 3,
            performer=people[(7 * a + v // 2) % len(people)],
            replication=1 + (a // 3 + v // 6) % 2,
            action=a + 1,
        )
        while name in seen:  # only for very many samples per action
            name = dataclasses.replace(name, replication=name.replication + 2)
        seen.add(name)
        names.append(name)
    return names


def _write_one(job: tuple[pathlib.Path, SampleName, int, int, tuple[int, int], bool]) -> pathlib.Path:
    out_dir, name, seed, index, frames, noise = job
    path = out_dir / f"{name}.skeleton"
    text = render_sample(name, (seed, index), frames=frames, noise=noise)
    path.write_bytes(text.encode("ascii"))
    return path


def write_synthetic_dataset(out_dir, samples: int, *, dataset: str = "ntu60", num_actions: int | None = None,
                            seed: int = 0, frames: tuple[int, int] = (40, 300), noise: bool = True,
                            workers: int = 1) -> list[pathlib.Path]:  # fmt: skip
    """Write `samples` synthetic `SsssCcccPpppRrrrAaaa.skeleton` files; returns their paths in order.

    File i is drawn from numpy.random.default_rng((seed, i)), so the result does not depend on `workers`.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, received: {samples}")
    if not 1 <= frames[0] <= frames[1]:
        raise ValueError(f"frames must be (lo, hi) with 1 <= lo <= hi, received: frames={frames}")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = (int(frames[0]), int(frames[1]))
    names = sample_names(samples, dataset, num_actions)
    jobs = [(out_dir, name, seed, i, frames, noise) for i, name in enumerate(names)]
    if workers <= 1:
        return [_write_one(job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


# UT-Kinect-Action3D (mans.formats.utkinect): each action gets the motion program of an NTU action with a similar
# movement, so a sequence of ten actions reads like the real recordings.
UTKINECT_PROGRAMS = {  # UT-Kinect action -> NTU action whose program drives it
    "walk": 59, "sitDown": 8, "standUp": 9, "pickUp": 6, "carry": 92, "throw": 7, "push": 52, "pull": 109,
    "waveHands": 23, "clapHands": 10,
}  # fmt: skip
_KINECT_V1_FROM_V2 = (0, 1, 20, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)  # 2: shoulder centre


def _utkinect_sequence(subject: int, episode: int, rng: np.random.Generator) -> tuple[np.ndarray, list, list]:
    """One recording: joints (N, 20, 3) in camera space, its frame numbers, and (start, end) per action."""
    from mans.formats.utkinect import ACTIONS

    traits = performer_traits(500 + subject)
    poses, segments = [], []
    for action in ACTIONS:
        idle = np.tile(traits.posture, (int(rng.integers(3, 10)), 1))  # standing between two actions
        count = int(rng.integers(15, 45))
        moving = _dof_tracks(UTKINECT_PROGRAMS[action], 0, traits, count, rng)
        first = sum(len(p) for p in poses) + len(idle)
        poses += [idle, moving]
        segments.append((first, first + count - 1))
    pose = pose_sequence(np.concatenate(poses), traits)  # (N, 25, 3) actor frame, facing -z
    yaw = np.deg2rad(rng.normal(0.0, 15.0))
    scene = pose @ _rot_y(np.array(yaw)).T + (rng.normal(0.0, 0.2), 0.1, 2.8 + rng.normal(0.0, 0.2))
    scene += rng.normal(0.0, 0.006, scene.shape)  # sensor jitter
    steps = rng.choice([2, 2, 2, 2, 2, 2, 4, 6], size=len(scene))  # a 15 Hz stream with gaps
    numbers = 100 * episode + np.cumsum(steps)
    return scene[:, list(_KINECT_V1_FROM_V2)], numbers, segments


def write_synthetic_utkinect(out_dir, *, seed: int = 0, subjects: int = 10, episodes: int = 2,
                             nan_segment: bool = True) -> list[str]:  # fmt: skip
    """Write a UT-Kinect-Action3D folder: `joints/joints_sSS_eEE.txt` and `actionLabel.txt`.

    Each sequence is one performer doing the ten actions in order, with idle frames between them. Like
    the real data, frame numbers step by 2 with gaps, a few lines repeat the previous frame number with
    other coordinates, some label lines have trailing spaces, and (nan_segment) one action of the first
    sequence is labelled `NaN NaN`. Returns the sequence names.
    """
    from mans.formats.utkinect import ACTIONS

    out_dir = pathlib.Path(out_dir)
    (out_dir / "joints").mkdir(parents=True, exist_ok=True)
    labels, names = [], []
    for subject in range(1, subjects + 1):
        for episode in range(1, episodes + 1):
            rng = np.random.default_rng((seed, subject, episode))
            joints, numbers, segments = _utkinect_sequence(subject, episode, rng)
            repeat = np.flatnonzero(rng.random(len(numbers)) < 0.02)  # the camera logged a frame twice
            order = np.sort(np.concatenate([np.arange(len(numbers)), repeat]))
            rows = joints[order]
            second = np.flatnonzero(np.diff(order) == 0) + 1  # the repeated line: other coordinates
            rows[second] += rng.normal(0.0, 0.01, (len(second), 20, 3))
            table = np.concatenate([numbers[order, None], rows.reshape(len(order), -1)], axis=1)
            name = f"s{subject:02d}_e{episode:02d}"
            np.savetxt(out_dir / "joints" / f"joints_{name}.txt", table, fmt=["%d"] + ["%.7g"] * 60)
            labels.append(name)
            for k, (action, (start, end)) in enumerate(zip(ACTIONS, segments, strict=True)):
                if nan_segment and subject == 1 and episode == 1 and action == "carry":
                    labels.append(f"{action}:  NaN NaN")
                    continue
                labels.append(f"{action}: {numbers[start]} {numbers[end]}" + (" " if k % 3 == 0 else ""))
            names.append(name)
    (out_dir / "actionLabel.txt").write_text("\n".join(labels) + "\n")
    return names
