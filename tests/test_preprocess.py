"""mans.preprocessing.preprocess: the faithful transform against values worked out by hand on tiny .skeleton files.

The hand-made body stands upright facing the camera with its hip midpoint at o = (0, 0, 2). Its torso
(joints 0 1 4 8 12 16 20) varies along camera y only symmetrically in x, so the first principal axis
is (0, +-1, 0); the largest-magnitude centred projection is joint 20's (+0.329), so u = (0, 1, 0).
With v = j12 - j16 = (0.2, 0, 0): y = v x u = (0, 0, 1), x = y x u = (-1, 0, 0), and
R^-1 (p - o) = (-a, c - 2, b) for a joint p = (a, b, c). The feet are nearer the camera than the
ankles, so mean y(15) - y(14) = -0.1 < 0 and channel y is negated: (-a, 2 - c, b). z of joint 4 is
0.5 > 0 and x(16) - x(12) = 0.2 > 0: no other fix.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from mans.formats.ntu import Skeleton, read_skeleton
from mans.preprocessing import preprocess
from mans.preprocessing.preprocess import SampleSkipped, process_skeleton

BODY = np.zeros((25, 3))
BODY[:] = (0.3, 0.2, 2.1)  # joints not named below: an arbitrary common point
BODY[0] = (0.0, 0.0, 2.0)  # spine base
BODY[1] = (0.0, 0.3, 2.0)  # spine mid
BODY[20] = (0.0, 0.6, 2.0)  # spine shoulder
BODY[4] = (0.2, 0.5, 2.0)  # left shoulder
BODY[8] = (-0.2, 0.5, 2.0)  # right shoulder
BODY[12] = (0.1, 0.0, 2.0)  # left hip
BODY[16] = (-0.1, 0.0, 2.0)  # right hip
BODY[14] = (0.1, -0.8, 2.0)  # left ankle
BODY[15] = (0.1, -0.85, 1.9)  # left foot
BODY[18] = (-0.1, -0.8, 2.0)  # right ankle
BODY[19] = (-0.1, -0.85, 1.9)  # right foot
BODY[7] = (0.4, 0.1, 1.7)  # left hand

BODY_ID = 72057594037931101


def expected(points: np.ndarray) -> np.ndarray:
    """Hand-derived faithful output of camera points (a, b, c) of a body whose frame is BODY's."""
    a, b, c = np.moveaxis(np.asarray(points, np.float64), -1, 0)
    return np.stack([-a, 2 - c, b], axis=-1)


def turned(points: np.ndarray) -> np.ndarray:
    """The body turned 180 degrees about the vertical line x = 0.5, z = 2 (facing away), in camera space."""
    points = np.asarray(points, np.float64)
    return np.stack([1 - points[..., 0], points[..., 1], 4 - points[..., 2]], axis=-1)


def skeleton_text(frames: list[list[tuple[int, np.ndarray]]]) -> str:
    """A .skeleton file (CRLF) of frames, each a list of (bodyID, joints (25, 3))."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.01 -0.02 2")
            lines.append(str(len(joints)))
            for x, y, z in joints:
                lines.append(f"{x:.7g} {y:.7g} {z:.7g} 250.1 200.2 900.3 500.4 0.1 0.2 0.3 0.4 2")
    return "\r\n".join(lines) + "\r\n"


def write(tmp_path: pathlib.Path, frames, name: str = "S001C001P001R001A001") -> pathlib.Path:
    path = tmp_path / f"{name}.skeleton"
    path.write_text(skeleton_text(frames), newline="")
    return path


def load(tmp_path, frames):
    return read_skeleton(write(tmp_path, frames))


def test_view_frame_by_hand():
    rotation, origin = preprocess.view_frame(BODY)
    np.testing.assert_allclose(origin, (0, 0, 2))
    np.testing.assert_allclose(rotation, [[-1, 0, 0], [0, 0, 1], [0, 1, 0]], atol=1e-12)  # columns x y z
    out = preprocess.view_transform(BODY, rotation, origin)
    np.testing.assert_allclose(out[7], (-0.4, -0.3, 0.1), atol=1e-12)  # (-a, c - 2, b) before sign fixes


def test_one_body_padded(tmp_path):
    shifted = BODY + (0.05, 0.0, 0.1)  # later frames move; the frame of reference stays frame 0's
    image = process_skeleton(load(tmp_path, [[(BODY_ID, BODY)], [(BODY_ID, shifted)], [(BODY_ID, BODY)]]))
    assert image.shape == (50, 50, 3) and image.dtype == np.float32
    before = (50 - 3) // 2  # 23 zero rows, then the 3 frames, then 24 zero rows
    assert not image[:before].any() and not image[before + 3 :].any()
    np.testing.assert_allclose(image[before, :25], expected(BODY), atol=1e-6)
    np.testing.assert_allclose(image[before + 1, :25], expected(shifted), atol=1e-6)
    np.testing.assert_allclose(image[before + 1, 7], (-0.45, 0.2, 0.1), atol=1e-6)  # by hand
    assert not image[:, 25:].any()  # no second body


def test_two_bodies(tmp_path):
    other = turned(BODY)
    other[7] = turned(np.array([0.25, 0.4, 1.8]))  # its left hand elsewhere
    image = process_skeleton(load(tmp_path, [[(BODY_ID, BODY), (BODY_ID + 1, other)]] * 2))
    row = image[24]  # two frames: 24 zero rows before
    np.testing.assert_allclose(row[:25], expected(BODY), atol=1e-6)
    np.testing.assert_allclose(row[25 + 7], (-0.25, 0.2, 0.4), atol=1e-6)  # turned back by its own frame
    np.testing.assert_allclose(row[25:], expected(turned(other)), atol=1e-6)


def test_frame_with_three_bodies_is_a_zero_row_and_not_a_reference(tmp_path):
    crowd = [(BODY_ID + 5, BODY + 1.0), (BODY_ID, BODY + 0.5), (BODY_ID + 7, BODY - 1.0)]
    shifted = BODY + (0.05, 0.0, 0.1)
    skel = load(tmp_path, [crowd, [(BODY_ID, BODY)], [(BODY_ID, shifted)], [], [(BODY_ID, BODY)]])
    rows = preprocess.faithful_rows(skel)
    assert not rows[0].any() and not rows[3].any()  # 3 bodies, then no body: zero rows
    np.testing.assert_allclose(rows[1, :25], expected(BODY) * (1, -1, 1), atol=1e-6)  # before sign fixes
    image = process_skeleton(skel)
    start = (50 - 5) // 2
    np.testing.assert_allclose(image[start + 2, :25], expected(shifted), atol=1e-6)


def test_last_frame_with_three_bodies_is_skipped_in_faithful_mode_only(tmp_path):
    crowd = [(BODY_ID, BODY), (BODY_ID + 5, BODY + 1.0), (BODY_ID + 7, BODY - 1.0)]
    skel = load(tmp_path, [[(BODY_ID, BODY)]] * 20 + [crowd])
    with pytest.raises(SampleSkipped, match="last frame") as info:
        process_skeleton(skel)
    assert info.value.reason == "last-frame-3+bodies"
    image = process_skeleton(skel, mode="denoised")
    np.testing.assert_allclose(image[(50 - 21) // 2 + 20, :25], expected(BODY), atol=1e-6)


def test_long_sequences_are_sampled(tmp_path):
    frames = [[(BODY_ID, BODY + (0.01 * f, 0, 0))] for f in range(120)]
    image = process_skeleton(load(tmp_path, frames))
    picked = np.rint(-(image[:, 0, 0] + 0.0) / 0.01).astype(int)  # joint 0 x' = -(0 + 0.01 f)
    np.testing.assert_array_equal(picked, np.linspace(0, 119, 50).astype(int))


def test_size_pads_joint_columns(tmp_path):
    image = process_skeleton(load(tmp_path, [[(BODY_ID, BODY)]] * 60), size=64)
    assert image.shape == (64, 64, 3)
    assert not image[:, :7].any() and not image[:, 7 + 50 :].any()  # 7 columns before, 7 after
    np.testing.assert_allclose(image[2, 7 : 7 + 25], expected(BODY), atol=1e-6)


def test_to_fixed_length():
    a = np.arange(1, 4)
    np.testing.assert_array_equal(preprocess.to_fixed_length(a, 8), [0, 0, 1, 2, 3, 0, 0, 0])
    np.testing.assert_array_equal(preprocess.to_fixed_length(np.arange(10), 4), [0, 3, 6, 9])
    np.testing.assert_array_equal(preprocess.to_fixed_length(a, 3), a)
    b = preprocess.to_fixed_length(np.ones((2, 3)), 5, axis=1)
    np.testing.assert_array_equal(b, [[0, 1, 1, 1, 0]] * 2)


def rows_with(**values) -> np.ndarray:
    rows = np.ones((4, 50, 3))
    rows[..., 1] = 0
    for key, value in values.items():
        frame, joint, channel = key.split("_")[1:]
        rows[int(frame), int(joint), int(channel)] = value
    return rows


@pytest.mark.parametrize(
    "values, flipped",
    [
        ({}, ()),
        ({"at_0_4_2": -0.1}, (2,)),  # z of joint 4 at frame 0 < 0
        ({"at_1_4_2": -0.1}, ()),  # only frame 0 counts
        ({"at_2_15_1": -0.4}, (1,)),  # mean y15 - mean y14 < 0
        ({"at_2_19_1": -0.4}, (1,)),  # mean y19 - mean y18 < 0 alone suffices
        ({"at_2_15_1": -0.4, "at_2_19_1": -0.4}, (1,)),
        ({"at_3_12_0": 2.0}, (0,)),  # mean x16 - mean x12 < 0
        ({"at_0_4_2": -1, "at_1_14_1": 1, "at_3_12_0": 5}, (0, 1, 2)),
    ],
)
def test_fix_signs(values, flipped):
    rows = rows_with(**values)
    out = preprocess.fix_signs(rows)
    for channel in range(3):
        sign = -1 if channel in flipped else 1
        np.testing.assert_array_equal(out[..., channel], sign * rows[..., channel])


def test_fix_signs_means_count_empty_rows():
    rows = np.zeros((10, 50, 3))
    rows[0, 15, 1], rows[1:, 14, 1] = 0.5, 0.1  # sum y15 = 0.5 < sum y14 = 0.9
    assert preprocess.fix_signs(rows)[0, 15, 1] == -0.5


def test_pca_sign_rule_of_scikit_learn_019():
    points = np.array([[0, 0, 0], [0, 1, 0], [0, 3.5, 0], [0, 1.5, 0.1]])  # mean y 1.5: 3.5 projects most
    np.testing.assert_allclose(preprocess.pca_first_axis(points), (0, 1, 0), atol=0.05)
    np.testing.assert_allclose(preprocess.pca_first_axis(-points), (0, -1, 0), atol=0.05)  # -3.5 now
    assert preprocess.pca_sign(np.array([0.1, -0.5, 0.5])) == -1.0  # a tie: the first one decides
    assert preprocess.pca_sign(np.array([0.5, -0.5, 0.1])) == 1.0
    assert preprocess.pca_sign(np.array([0.3, -0.6, 0.5])) == -1.0  # the largest magnitude, not the largest


def test_pca_axis_agrees_with_scikit_learn_up_to_sign():
    sklearn = pytest.importorskip("sklearn.decomposition")
    points = np.random.default_rng(0).normal(size=(7, 3)) * (1, 3, 0.5)
    ours = preprocess.pca_first_axis(points)
    theirs = sklearn.PCA(n_components=3).fit(points).components_[0]
    np.testing.assert_allclose(abs(ours @ theirs), 1, atol=1e-12)


def flip_u_for(monkeypatch, bodies: set[int]) -> None:
    """Make the PCA axis of the listed bodies (in order of computation) point the other way."""
    original, calls = preprocess.pca_first_axis, []

    def flipped(points):
        calls.append(None)
        return -original(points) if len(calls) - 1 in bodies else original(points)

    monkeypatch.setattr(preprocess, "pca_first_axis", flipped)


def test_flipped_u_changes_nothing_for_one_body_seen_in_frame_0(tmp_path, monkeypatch):
    skel = load(tmp_path, [[(BODY_ID, BODY + (0.01 * f, 0, 0))] for f in range(5)])
    reference = process_skeleton(skel)
    flip_u_for(monkeypatch, {0})
    np.testing.assert_array_equal(process_skeleton(skel), reference)


def test_flipped_u_flips_y_when_the_legs_disagree(tmp_path, monkeypatch):
    """Not in docs/paper.md's list: the y test is an "or" of two legs, so when one leg says "negate" and
    the other does not, y is negated for either sign of u, and a flipped u shows in channel y."""
    body = BODY.copy()
    body[19, 2] = 2.1  # right foot behind its ankle: mean y19 - y18 = +0.1 while y15 - y14 = -0.1
    skel = load(tmp_path, [[(BODY_ID, body)]] * 3)
    reference = process_skeleton(skel)
    flip_u_for(monkeypatch, {0})
    np.testing.assert_allclose(process_skeleton(skel), reference * (1, -1, 1), atol=1e-6)


def test_flipped_u_of_the_second_body_flips_its_y_and_z(tmp_path, monkeypatch):
    skel = load(tmp_path, [[(BODY_ID, BODY), (BODY_ID + 1, turned(BODY))]] * 3)
    reference = process_skeleton(skel)
    flip_u_for(monkeypatch, {1})
    image = process_skeleton(skel)
    np.testing.assert_array_equal(image[:, :25], reference[:, :25])
    np.testing.assert_allclose(image[:, 25:], reference[:, 25:] * (1, -1, -1), atol=1e-6)


def test_flipped_u_flips_z_when_frame_0_has_no_body(tmp_path, monkeypatch):
    skel = load(tmp_path, [[]] + [[(BODY_ID, BODY)]] * 3)
    reference = process_skeleton(skel)
    np.testing.assert_allclose(reference[24, :25], expected(BODY), atol=1e-6)
    flip_u_for(monkeypatch, {0})
    np.testing.assert_allclose(process_skeleton(skel), reference * (1, 1, -1), atol=1e-6)


def test_degenerate_body_is_skipped(tmp_path):
    flat = np.tile([[0.1, 0.2, 2.0]], (25, 1))
    with pytest.raises(SampleSkipped) as info:
        process_skeleton(load(tmp_path, [[(BODY_ID, flat)]]))
    assert info.value.reason == "degenerate-body"


def test_no_usable_frame(tmp_path):
    crowd = [(BODY_ID + k, BODY + k) for k in range(3)]
    with pytest.raises(SampleSkipped) as info:
        process_skeleton(load(tmp_path, [crowd, crowd, []]))
    assert info.value.reason == "no-usable-frame"


def naive_faithful(skel, size=50):
    """docs/paper.md steps 2-6 written as plainly as possible, frame by frame, joint by joint."""
    frames = skel.num_frames
    rows = np.zeros((frames, 50, 3))
    frames_of = {}
    for body in (0, 1):
        usable = [f for f in range(frames) if 1 <= skel.body_counts[f] <= 2 and body < skel.body_counts[f]]
        if not usable:
            continue
        joints = skel.coords[usable[0], body].astype(np.float64)
        o = (joints[12] + joints[16]) / 2
        torso = np.array([joints[j] - o for j in (0, 1, 4, 8, 12, 16, 20)])
        u = preprocess.pca_first_axis(torso)
        y = np.cross(joints[12] - joints[16], u)
        x = np.cross(y, u)
        r = np.column_stack([x / np.linalg.norm(x), y / np.linalg.norm(y), u / np.linalg.norm(u)])
        frames_of[body] = (usable, np.linalg.inv(r), o)
    for body, (usable, inverse, o) in frames_of.items():
        for f in usable:
            for j in range(25):
                rows[f, 25 * body + j] = inverse @ (skel.coords[f, body, j] - o)
    if rows[0, 4, 2] < 0:
        rows[:, :, 2] = -rows[:, :, 2]
    if rows[:, 15, 1].mean() - rows[:, 14, 1].mean() < 0 or rows[:, 19, 1].mean() - rows[:, 18, 1].mean() < 0:
        rows[:, :, 1] = -rows[:, :, 1]
    if rows[:, 16, 0].mean() - rows[:, 12, 0].mean() < 0:
        rows[:, :, 0] = -rows[:, :, 0]
    image = np.zeros((size, size, 3))
    if frames < size:
        image[(size - frames) // 2 : (size - frames) // 2 + frames, :50] = rows
    else:
        image[:, :50] = rows[np.linspace(0, frames - 1, size).astype(int)]
    return image


@pytest.mark.parametrize("frames", [7, 50, 173])
def test_faithful_matches_a_naive_implementation(frames):
    rng = np.random.default_rng(frames)
    counts = rng.choice([0, 1, 2, 2, 3], size=frames).astype(np.int32)
    counts[-1] = 2
    coords = np.zeros((frames, 3, 25, 3), np.float32)
    for f in range(frames):
        coords[f, : counts[f]] = BODY + rng.normal(scale=0.1, size=(counts[f], 25, 3))
    ids = np.where(np.arange(3) < counts[:, None], np.arange(1, 4, dtype=np.uint64), 0).astype(np.uint64)
    skel = Skeleton(coords, counts, ids, np.zeros((frames, 3, 25), np.int8))
    np.testing.assert_allclose(process_skeleton(skel), naive_faithful(skel), atol=2e-6)


def test_bad_arguments(tmp_path):
    skel = load(tmp_path, [[(BODY_ID, BODY)]])
    with pytest.raises(ValueError, match="mode"):
        process_skeleton(skel, mode="clean")
    with pytest.raises(ValueError, match="size >= 50"):
        process_skeleton(skel, size=32)


# denoised mode


def moving(body: np.ndarray, frames: int, amplitude: float, start: int = 0) -> list[np.ndarray]:
    return [body + (amplitude * np.sin(0.3 * (f + start)), 0, 0) for f in range(frames)]


def test_denoised_keeps_the_two_most_active_bodies_by_id(tmp_path):
    calm, busy, busier = moving(BODY, 40, 0.01), moving(BODY + 1, 40, 0.1), moving(BODY - 1, 40, 0.3)
    frames = []
    for f in range(40):  # listed in varying order, the calm one always first
        bodies = [(1, calm[f]), (2, busy[f]), (3, busier[f])]
        frames.append([bodies[0]] + (bodies[1:] if f % 2 else bodies[:0:-1]))
    rows = preprocess.denoised_rows(read_skeleton(write(tmp_path, frames)))
    assert rows.shape == (40, 50, 3)
    for columns, track in ((slice(0, 25), busier), (slice(25, 50), busy)):
        want = preprocess.view_transform(np.stack(track), *preprocess.view_frame(track[0]))
        np.testing.assert_allclose(rows[:, columns], want, atol=1e-5)


def test_denoised_drops_short_and_wide_tracks_and_empty_frames(tmp_path):
    person = moving(BODY, 60, 0.05)
    blip = moving(BODY + 1, 5, 1.0)  # 5 frames: too short, however active
    wide = BODY.copy()
    wide[:, 0] = np.linspace(-2, 2, 25)  # 4 m wide, 1.45 m tall: not a person
    frames = [[(1, person[f])] for f in range(60)]
    for f in range(5):
        frames[10 + f].append((2, blip[f]))
    for f in range(30, 60):
        frames[f].append((3, wide + (0.5 * np.sin(f), 0, 0)))
    frames.insert(0, [])
    rows = preprocess.denoised_rows(read_skeleton(write(tmp_path, frames)))
    assert rows.shape == (60, 50, 3)  # the empty frame is dropped
    assert not rows[:, 25:].any()  # only the person is left
    image = process_skeleton(read_skeleton(write(tmp_path, frames)), mode="denoised")
    assert image.shape == (50, 50, 3)


def test_denoised_joins_a_body_whose_id_changed(tmp_path):
    active, calm = moving(BODY, 60, 0.3), moving(BODY + (1.0, 0, 0.5), 60, 0.02)
    frames = [[(1 if f < 30 else 2, active[f]), (3, calm[f])] for f in range(60)]
    rows = preprocess.denoised_rows(read_skeleton(write(tmp_path, frames)))
    want = preprocess.view_transform(np.stack(active), *preprocess.view_frame(active[0]))
    np.testing.assert_allclose(rows[:, :25], want, atol=1e-5)  # IDs 1 then 2: one body
    want = preprocess.view_transform(np.stack(calm), *preprocess.view_frame(calm[0]))
    np.testing.assert_allclose(rows[:, 25:], want, atol=1e-5)  # the calm person is kept


def test_denoised_normalises_each_actor_from_its_own_first_frame(tmp_path):
    active, calm = moving(BODY, 20, 0.3), moving(BODY + (1.0, 0, 0.5), 30, 0.0)  # actor 1 leaves after frame 19
    frames = [[(3, calm[f])] + ([(1, active[f])] if f < 20 else []) for f in range(30)]
    rows = preprocess.denoised_rows(read_skeleton(write(tmp_path, frames)))
    assert rows.shape == (30, 50, 3) and not rows[20:, :25].any()  # rows with actor 2 alone are kept
    want = preprocess.view_transform(np.stack(active), *preprocess.view_frame(active[0]))
    np.testing.assert_allclose(rows[:20, :25], want, atol=1e-5)
    want = preprocess.view_transform(np.stack(calm), *preprocess.view_frame(calm[0]))
    np.testing.assert_allclose(rows[:, 25:], want, atol=1e-5)


def test_denoised_keeps_a_short_sample(tmp_path):
    image = process_skeleton(load(tmp_path, [[(BODY_ID, BODY)]] * 3), mode="denoised")
    np.testing.assert_allclose(image[23, :25], expected(BODY), atol=1e-6)


def test_resample_fills_every_row_by_linear_interpolation():
    rows = np.arange(4, dtype=np.float64)[:, None, None] * np.ones((1, 2, 3))
    out = preprocess.resample_rows(rows, 7)
    assert out.shape == (7, 2, 3)
    np.testing.assert_allclose(out[:, 0, 0], [0, 0.5, 1, 1.5, 2, 2.5, 3])
    np.testing.assert_allclose(preprocess.resample_rows(rows[:1] + 5, 3), 5)
    np.testing.assert_allclose(preprocess.resample_rows(np.arange(9.0)[:, None], 3)[:, 0], [0, 4, 8])


def test_timed_resampling_interpolates_at_instants_evenly_spaced_in_time(tmp_path):
    """Frames captured at times 0 2 3 7: S rows at times 0..7 evenly spaced, each coordinate np.interp of the
    recorded ones; evenly spaced times give the plain resampling; a skeleton without times is resampled."""
    times = np.array([0.0, 2.0, 3.0, 7.0])
    rows = np.random.default_rng(0).normal(size=(4, 2, 3))
    out = preprocess.resample_rows(rows, 8, times)
    for joint, coord in np.ndindex(2, 3):
        np.testing.assert_allclose(out[:, joint, coord], np.interp(np.arange(8.0), times, rows[:, joint, coord]))
    np.testing.assert_allclose(preprocess.resample_rows(rows, 9, 10 + 3 * np.arange(4.0)),
                               preprocess.resample_rows(rows, 9), atol=1e-12)
    with pytest.raises(ValueError, match="increasing"):
        preprocess.resample_rows(rows, 8, np.array([0.0, 2.0, 2.0, 7.0]))
    assert preprocess.fixed_length_sources(4, 8, "timed", times).tolist() == [0, 0, 1, 2, 2, 2, 3, 3]  # nearest
    skel = load(tmp_path, [[(BODY_ID, BODY + (0.01 * k, 0.0, 0.02 * k))] for k in range(5)])
    assert skel.times is None
    np.testing.assert_array_equal(process_skeleton(skel, frames="timed"), process_skeleton(skel, frames="resample"))


def test_frames_option_changes_only_the_time_axis(tmp_path):
    skel = load(tmp_path, [[(BODY_ID, BODY + (0.01 * k, 0.0, 0.02 * k))] for k in range(20)])
    padded = preprocess.process_skeleton(skel, size=50)
    filled = preprocess.process_skeleton(skel, size=50, frames="resample")
    present = np.flatnonzero(np.abs(padded).sum(axis=(1, 2)) > 0)
    assert len(present) == 20 and np.abs(filled).sum(axis=(1, 2)).min() > 0  # every row carries the body
    np.testing.assert_allclose(filled[0], padded[present[0]], atol=1e-6)  # the same first and last frames
    np.testing.assert_allclose(filled[-1], padded[present[-1]], atol=1e-6)
    with pytest.raises(ValueError, match="expected frames among"):
        preprocess.process_skeleton(skel, frames="stretch")


@pytest.mark.parametrize(
    "values, flipped",
    [
        ({}, ()),
        ({"at_0_4_2": -0.1}, (1, 2)),  # the up axis points down: a half turn about x, not a reflection
        ({"at_2_15_1": -0.4}, ()),  # a foot "behind" its ankle negates nothing
        ({"at_3_12_0": 2.0}, ()),  # nor do crossed hips
    ],
)
def test_rigid_signs_only_turn_the_frame(values, flipped):
    rows = rows_with(**values)
    out = preprocess.fix_signs(rows, signs="rigid")
    for channel in range(3):
        sign = -1 if channel in flipped else 1
        np.testing.assert_array_equal(out[..., channel], sign * rows[..., channel])


def test_rigid_signs_turn_a_flipped_axis_back_and_never_reflect(tmp_path, monkeypatch):
    """BODY's feet point towards the camera, so the demo's y test negates y (module docstring): with the feet
    behind the ankles instead, the demo leaves y alone and the two bodies become front-back reflections of each
    other. Rigid signs give both the rotation's own y, and undo a flipped PCA axis whatever the legs say."""
    backwards = BODY.copy()
    backwards[15, 2] = backwards[19, 2] = 2.1  # both feet behind their ankles
    ahead, behind = (load(tmp_path, [[(BODY_ID, body)]] * 3) for body in (BODY, backwards))
    np.testing.assert_allclose(process_skeleton(ahead), process_skeleton(ahead, signs="rigid") * (1, -1, 1), atol=1e-6)
    np.testing.assert_allclose(process_skeleton(behind), process_skeleton(behind, signs="rigid"), atol=1e-6)
    reference = process_skeleton(ahead, signs="rigid")
    flip_u_for(monkeypatch, {0})
    np.testing.assert_allclose(process_skeleton(ahead, signs="rigid"), reference, atol=1e-6)
    with pytest.raises(ValueError, match="expected signs among"):
        process_skeleton(ahead, signs="mirror")


def test_centre_frames_moves_every_frame_to_its_first_body_hips():
    """Frame t's origin becomes the hip midpoint of its first body present; both actors move by that same vector,
    so their relative place stays; a frame holding only body 1 takes body 1's hips; empty rows stay zero."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(4, 50, 3))
    rows[1, 25:] = 0  # body 1 absent
    rows[2, :25] = 0  # body 0 absent
    rows[3] = 0  # no body
    out = preprocess.centre_frames(rows)
    hips = (rows[:, [12, 16]].mean(axis=1), rows[:, [37, 41]].mean(axis=1))  # body 0's and body 1's, (4, 3)
    np.testing.assert_allclose(out[0], rows[0] - hips[0][0], atol=1e-12)
    np.testing.assert_allclose(out[1, :25], rows[1, :25] - hips[0][1], atol=1e-12)
    np.testing.assert_array_equal(out[1, 25:], 0)
    np.testing.assert_allclose(out[2, 25:], rows[2, 25:] - hips[1][2], atol=1e-12)
    np.testing.assert_array_equal(out[2, :25], 0)
    np.testing.assert_array_equal(out[3], 0)
    np.testing.assert_allclose(out[:3, [12, 16]].mean(axis=1)[:2], 0, atol=1e-12)


def test_centre_frames_of_2d_keypoints_moves_only_the_joints_seen():
    layout = preprocess.JointLayout(num_joints=4, max_bodies=1, torso=(0, 1), mirror=(), origin=(2, 3), hips=(2, 3),
                                    up=0, feet=(), dims=2)
    rows = np.array([[[1.0, 2.0, 0.9], [3.0, 4.0, 0.8], [2.0, 0.0, 0.7], [4.0, 2.0, 0.6]],
                     [[1.0, 2.0, 0.9], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [4.0, 2.0, 0.6]],  # joint 2 not seen
                     [[1.0, 2.0, 0.9], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # no origin joint
    out = preprocess.centre_frames(rows, layout)
    np.testing.assert_allclose(out[0], rows[0] - [3.0, 1.0, 0.0])
    np.testing.assert_allclose(out[1], [[-3.0, 0.0, 0.9], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.6]])
    np.testing.assert_array_equal(out[2], rows[2])


def test_centre_frame_is_the_first_centre_minus_each_frame_hips(tmp_path):
    """process_skeleton(centre="frame") = the default image with every row's hip midpoint taken away."""
    skel = load(tmp_path, [[(BODY_ID, BODY + (0.1 * t, 0.0, -0.05 * t))] for t in range(5)])
    first = process_skeleton(skel, frames="resample")
    frame = process_skeleton(skel, frames="resample", centre="frame")
    hips = first[:, [12, 16]].mean(axis=1, keepdims=True)  # (S, 1, 3)
    assert np.abs(hips).max() > 0.3  # the body walks, so the two differ
    np.testing.assert_allclose(frame[:, :25], first[:, :25] - hips, atol=1e-6)
    np.testing.assert_array_equal(frame[:, 25:], 0)
    with pytest.raises(ValueError, match="expected centre among"):
        process_skeleton(skel, centre="middle")


def test_centre_floor_takes_away_each_frame_hips_in_the_horizontal_plane_only(tmp_path):
    """process_skeleton(centre="floor") = the default image less every row's hip midpoint in x and y; z (up)
    keeps the first frame's origin, so a body that crouches still shows it."""
    skel = load(tmp_path, [[(BODY_ID, BODY + (0.1 * t, 0.05 * t, -0.05 * t))] for t in range(5)])
    first = process_skeleton(skel, frames="resample")
    floor = process_skeleton(skel, frames="resample", centre="floor")
    hips = first[:, [12, 16]].mean(axis=1, keepdims=True)  # (S, 1, 3)
    assert np.abs(hips[..., :2]).max() > 0.3 and np.abs(hips[..., 2]).max() > 0.1
    np.testing.assert_allclose(floor[:, :25, :2], first[:, :25, :2] - hips[..., :2], atol=1e-6)
    np.testing.assert_array_equal(floor[..., 2], first[..., 2])
    np.testing.assert_array_equal(floor[:, 25:], 0)


def test_centre_frames_keeping_height_of_2d_keypoints_moves_x_only():
    layout = preprocess.JointLayout(num_joints=2, max_bodies=1, torso=(0, 1), mirror=(), origin=(0, 1), hips=(0, 1),
                                    up=0, feet=(), dims=2)
    rows = np.array([[[1.0, 2.0, 0.9], [3.0, 4.0, 0.8]]])
    out = preprocess.centre_frames(rows, layout, keep_height=True)
    np.testing.assert_allclose(out, [[[-1.0, 2.0, 0.9], [1.0, 4.0, 0.8]]])


def test_preprocessing_record_reads_the_attrs_of_files_that_predate_a_choice():
    """A file's attrs round-trip through the record; a choice a file predates takes the demo's; a bad value is
    refused naming the setting."""
    record = preprocess.Preprocessing("denoised", "resample", "rigid", "frame")
    assert preprocess.Preprocessing.from_attrs({"dataset": "utkinect", **record.attrs()}) == record
    assert preprocess.Preprocessing.from_attrs({"mode": "denoised"}) == preprocess.Preprocessing(mode="denoised")
    assert preprocess.Preprocessing.from_attrs({}) == preprocess.DEMO
    with pytest.raises(ValueError, match="expected mode among \\['faithful', 'denoised'\\], found 'clean'"):
        preprocess.Preprocessing.from_attrs({"mode": "clean"})
