"""mans.preprocessing.denoise: one hand-made .skeleton file per rule of CTR-GCN's get_raw_denoised_data.py.

The bodies are vertical lines of 25 joints, `line(h)`: x and z constant, y = h * j / 24. Such a body
passes the spread rule (x-extent 0 <= 0.8 * h), and its motion (rule 4: the variance of all joints of
all listings pooled, per coordinate, summed) is, when static, the y-variance of j / 24 over j = 0..24:
h^2 * 52 / 576 = 0.0903 h^2. So line(2.0) has motion 0.361, line(1.0) 0.0903, line(0.5) 0.0226.
`wide(w)` spreads the joints over w metres in x and 0.1 m in y: every listing is noisy (w > 0.08).
Each expected result below is worked out from the rules in mans/preprocessing/denoise.py's docstring.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_preprocess import skeleton_text

from mans.formats.ntu import read_skeleton
from mans.preprocessing import denoise, preprocess

RAMP = np.arange(25) / 24  # (25,) 0..1


def line(height: float, x: float = 0.0, z: float = 3.0) -> np.ndarray:
    return np.stack([np.full(25, x), height * RAMP, np.full(25, z)], axis=-1)  # (25, 3)


def wide(width: float, x: float = 0.0, z: float = 3.0) -> np.ndarray:
    return np.stack([x + width * RAMP, 0.1 * RAMP, np.full(25, z)], axis=-1)


def denoised(tmp_path, frames) -> denoise.DenoisedSequence:
    """Write frames (each a list of (bodyID, joints (25, 3))) as a .skeleton file and denoise it."""
    path = tmp_path / "S001C001P001R001A050.skeleton"
    path.write_text(skeleton_text(frames), newline="")
    return denoise.denoise_file(path)


def listed(frames: int, *tracks: tuple[int, range, object]) -> list:
    """frames lists of (bodyID, joints): each track (bodyID, the frames it is listed in, joints or f -> joints)."""
    out = [[] for _ in range(frames)]
    for body_id, present, joints in tracks:
        for f in present:
            out[f].append((body_id, joints(f) if callable(joints) else joints))
    return out


def test_a_single_body_id_is_kept_in_every_frame_with_a_body(tmp_path):
    # rule 3: one bodyID, so neither length (5 <= 11) nor spread (it is wide) applies; rule 1 removes the
    # frames without a body (file frames 0 and 3).
    frames = [[], [(7, wide(1.0))], [(7, wide(1.0))], [], [(7, wide(1.0))], [(7, wide(1.0))], [(7, wide(1.0))]]
    result = denoised(tmp_path, frames)
    assert result.actors == ((7,), ()) and result.body_ids == (7,) and result.dropped == {}
    np.testing.assert_array_equal(result.frames, [1, 2, 4, 5, 6])
    assert result.joints.shape == (5, 2, 25, 3) and result.joints.dtype == np.float32
    assert result.num_actors == 1 and result.as_script_array().shape == (5, 75)
    np.testing.assert_allclose(result.joints[:, 0], np.broadcast_to(wide(1.0), (5, 25, 3)), atol=1e-6)
    assert not result.joints[:, 1].any()


def test_eleven_listings_are_noise_and_twelve_are_not(tmp_path):
    # rule 5: body 2 (frames 5-15, 11 listings) is noise, body 3 (frames 5-16, 12) is not. Rule 8: body 1
    # (motion 0.0903) before body 3 (0.0226). Rule 9: body 3 overlaps actor 1, so it becomes actor 2.
    frames = listed(30, (1, range(30), line(1.0)), (2, range(5, 16), line(0.5, x=1.0)),
                    (3, range(5, 17), line(0.5, x=-1.0)))
    result = denoised(tmp_path, frames)
    assert result.dropped == {2: "length"} and result.actors == ((1,), (3,)) and result.body_ids == (1, 3)
    assert len(result.joints) == 30 and result.num_actors == 2
    np.testing.assert_array_equal(result.sources[:, 1], [-1] * 5 + list(range(5, 17)) + [-1] * 13)


@pytest.mark.parametrize(("wide_listings", "expected_actors", "expected_dropped"), [
    (30, ((1,), ()), {2: "spread"}),  # 30 / 30 noisy listings >= 0.69754
    (21, ((1,), ()), {2: "spread"}),  # 21 / 30 = 0.700 >= 0.69754
    (20, ((1,), (2,)), {}),  # 20 / 30 = 0.667: kept, and its motion is recomputed on its 10 other listings
])  # fmt: skip
def test_a_wide_object_is_dropped_by_the_spread_rule(tmp_path, wide_listings, expected_actors, expected_dropped):
    # Body 2 is listed first in every frame, wide(2.0) around x = 1 in its first `wide_listings` frames and
    # line(0.5, x=1) in the others. Over all 30 listings its motion is about 0.26 (x alone: 20 / 30 * 0.361),
    # above body 1's 0.0903; with 20 wide listings it keeps min(0.26, 0.0226) = 0.0226, so it ranks second.
    def body_2(f: int) -> np.ndarray:
        return wide(2.0, x=0.0) if f < wide_listings else line(0.5, x=1.0)

    frames = listed(30, (2, range(30), body_2), (1, range(30), line(1.0)))
    result = denoised(tmp_path, frames)
    assert result.actors == expected_actors and result.dropped == expected_dropped
    assert len(result.joints) == 30
    np.testing.assert_allclose(result.joints[:, 0], np.broadcast_to(line(1.0), (30, 25, 3)), atol=1e-6)


def test_the_spread_rule_applies_only_while_two_bodies_remain(tmp_path):
    # rule 7: both are wide; body 1 (first appearance) is examined with 2 bodies left and dropped, body 2
    # is not examined (one body left) and is the only actor.
    frames = listed(30, (1, range(30), wide(1.0)), (2, range(30), wide(1.5, x=2.0)))
    result = denoised(tmp_path, frames)
    assert result.dropped == {1: "spread"} and result.actors == ((2,), ()) and len(result.joints) == 30


def test_motion_pools_all_joints_so_a_tall_still_body_outranks_a_small_moving_one(tmp_path):
    # Body 1 stands still: line(2.0), motion 0.361, no joint moves (the sum of per-joint variances over time,
    # our old measure, is 0). Body 2, line(0.5), jumps between x = -0.3 and +0.3: motion 0.0226 + 0.09 = 0.113,
    # per-joint variances 25 * 0.09 = 2.25. The script ranks body 1 first although body 2 is listed first.
    frames = listed(20, (2, range(20), lambda f: line(0.5, x=0.3 if f % 2 else -0.3)), (1, range(20), line(2.0)))
    result = denoised(tmp_path, frames)
    assert result.actors == ((1,), (2,)) and result.body_ids == (1, 2) and len(result.joints) == 20
    np.testing.assert_allclose(result.joints[:, 0], np.broadcast_to(line(2.0), (20, 25, 3)), atol=1e-6)


def test_a_body_that_drops_out_is_moved_up_and_the_missing_frames_go(tmp_path):
    # Body 1 (x = 0.01 f) is absent from frames 10-13, where body 2 (4 listings, rule 5: noise) is seen,
    # so no frame is empty. Rule 2: body 1's 26 listings fill rows 0-25 (file frame 14 lands on row 10);
    # rule 10 removes rows 26-29, where no actor is left.
    frames = listed(30, (1, [*range(10), *range(14, 30)], lambda f: line(1.0, x=0.01 * f)),
                    (2, range(10, 14), line(1.0, x=1.0)))
    result = denoised(tmp_path, frames)
    assert result.dropped == {2: "length"} and result.actors == ((1,), ()) and result.num_actors == 1
    assert len(result.joints) == 26
    np.testing.assert_array_equal(result.frames, range(26))
    np.testing.assert_array_equal(result.sources[:, 0], [*range(10), *range(14, 30)])
    np.testing.assert_allclose(result.joints[10, 0], line(1.0, x=0.14), atol=1e-6)


def test_frames_with_only_the_second_actor_are_kept(tmp_path):
    # Body 1 (motion 0.361) is actor 1 in frames 0-19, body 2 (0.0226) actor 2 in 0-29: rows 20-29 hold
    # actor 2 alone and are kept (rule 10 removes only rows without any actor).
    frames = listed(30, (1, range(20), line(2.0)), (2, range(30), line(0.5, x=1.0)))
    result = denoised(tmp_path, frames)
    assert result.actors == ((1,), (2,)) and len(result.joints) == 30 and result.num_actors == 2
    assert not result.joints[20:, 0].any() and result.joints[20:, 1].any()
    assert result.as_script_array().shape == (30, 150)


def test_a_third_body_in_every_frame_is_dropped(tmp_path):
    # Motions 0.361 (1), 0.0903 (2), 0.0226 (3); body 3 is listed first. Body 2 overlaps actor 1 and joins
    # actor 2; body 3 overlaps both and is dropped (rule 9).
    frames = listed(20, (3, range(20), line(0.5, x=-1.0)), (1, range(20), line(2.0)), (2, range(20), line(1.0, x=1.0)))
    result = denoised(tmp_path, frames)
    assert result.actors == ((1,), (2,)) and result.body_ids == (1, 2) and result.dropped == {3: "overlap"}
    assert len(result.joints) == 20


def test_a_new_body_id_sharing_one_frame_continues_actor_one(tmp_path):
    # Body 1, line(2.0) (0.361), frames 0-14; body 2, line(1.5) (0.203), frames 14-29; body 3, line(0.5) (0.0226),
    # frames 0-29. Body 2 shares one frame with actor 1's [0, 14]: min(14, 29) - max(0, 14) = 0 <= 0, so it
    # joins actor 1 and its frame 14 overwrites body 1's. Body 3 overlaps actor 1's [0, 29] and is actor 2.
    frames = listed(30, (1, range(15), line(2.0)), (2, range(14, 30), line(1.5)), (3, range(30), line(0.5, x=1.0)))
    result = denoised(tmp_path, frames)
    assert result.actors == ((1, 2), (3,)) and result.dropped == {} and len(result.joints) == 30
    np.testing.assert_allclose(result.joints[13, 0], line(2.0), atol=1e-6)
    np.testing.assert_allclose(result.joints[14, 0], line(1.5), atol=1e-6)


def test_actor_two_spans_from_frame_zero(tmp_path):
    # Body 1 (0.361) is actor 1 over [0, 29]. Body 2 (0.0903, frames 18-29) joins actor 2, whose interval
    # starts as [0, 0] and so becomes [0, 29]. Body 3 (0.0226, frames 0-13) never meets body 2, yet it
    # overlaps [0, 29] and is dropped.
    frames = listed(30, (1, range(30), line(2.0)), (2, range(18, 30), line(1.0, x=1.0)),
                    (3, range(14), line(0.5, x=-1.0)))
    result = denoised(tmp_path, frames)
    assert result.actors == ((1,), (2,)) and result.dropped == {3: "overlap"} and len(result.joints) == 30


def test_where_the_script_fails_the_sample_is_skipped(tmp_path):
    only_noise = listed(20, (1, range(11), line(1.0)), (2, range(9, 20), line(1.0, x=1.0)))  # 11 listings each
    with pytest.raises(denoise.DenoiseError, match="more than 11 frames") as info:
        denoised(tmp_path, only_noise)
    assert info.value.reason == "only-noise"
    path = tmp_path / "S001C001P001R001A050.skeleton"
    with pytest.raises(preprocess.SampleSkipped) as info:
        preprocess.process_skeleton(read_skeleton(path), mode="denoised")
    assert info.value.reason == "only-noise"
    repeated = [[(1, line(1.0)), (1, line(1.0))]] + listed(20, (1, range(20), line(1.0)))  # 22 listings, 21 frames
    with pytest.raises(denoise.DenoiseError, match="listed twice") as info:
        denoised(tmp_path, repeated)
    assert info.value.reason == "repeated-body-id"
