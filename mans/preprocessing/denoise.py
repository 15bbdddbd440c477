"""NTU RGB+D body denoising exactly as CTR-GCN's `data/ntu/get_raw_denoised_data.py` does it.

That script (with its reader `get_raw_skes_data.py`, both from Microsoft's SGN / View-Adaptive
networks) is what CTR-GCN, InfoGCN, HD-GCN and most recent NTU results rest on. This module is our own
code, written from the script's rules; numpy only, so any pipeline can use it:

    from mans.preprocessing.denoise import denoise_file
    sequence = denoise_file("S001C001P001R001A050.skeleton")
    sequence.joints       # (T, 2, 25, 3) float32, actor 1 then actor 2, zeros where an actor is absent
    sequence.dropped      # {bodyID: "length" | "spread" | "overlap"}

The rules, numbered as docs/faithful-and-corrected.md lists them (the values are the script's):
 1. Frames that list no body are removed first; the frames left form the script's timeline 0..F'-1.
 2. A body is one bodyID. Its listings are stacked in file order. Its interval starts at the timeline
    position of its first listing and advances by one per further listing, whether or not it was
    listed in the frames in between: a body that drops out for k frames has its later frames moved k
    rows earlier, and its interval ends at start + listings - 1.
 3. A recording with a single bodyID keeps that body in every frame of the timeline; no other rule applies.
 With two or more bodyIDs:
 4. motion = the variance of all joints of all the body's listings pooled, per coordinate, summed over
    x, y and z (so the body's spatial extent counts), in float32 as numpy computes it.
 5. length: a body listed in at most 11 frames is noise ("length").
 6. If exactly one body is left, it is the only actor; rules 7-9 are skipped.
 7. spread: the bodies are examined in order of first appearance, each only while at least 2 bodies
    remain. A listing is noisy when its x-extent over the joints exceeds 0.8 times its y-extent. A body
    with a fraction >= 0.69754 of noisy listings is noise ("spread"); a body with fewer (but some) noisy
    listings keeps the smaller of its motion and the motion of its other listings. If exactly one body
    is then left, it is the only actor (rules 8-9 skipped).
 8. The bodies left are ranked by motion, largest first; equal motions keep the order of first appearance.
 9. Actor 1 is the first. Each further body, in rank order, joins actor 1 if min(end) - max(start) <= 0
    for its interval and actor 1's (they share at most one frame), else actor 2 under the same test,
    else it is dropped ("overlap"). Actor 2's interval starts as [0, 0], so once a body joins it, it
    spans from frame 0. A joining body widens the actor's interval to cover both and writes its rows
    over the actor's (the one shared frame included).
10. Missing frames: rows of the timeline where the actors' joints (the one actor's, after rule 6 or the
    end of rule 7) sum to 0 are removed. Not applied after rule 3.

Where the script stops with an exception, `DenoiseError` is raised instead (`.reason`): "only-noise"
(two or more bodyIDs, every one listed in at most 11 frames: the script fails with an IndexError) and
"repeated-body-id" (a body listed twice in a frame whose interval then runs past the last frame:
a ValueError there). A Skeleton without any listed body raises "no-body".
Known difference: the script keys bodies by the bodyID text, we by its integer value (only "007" and
"7" would differ). Comparisons of spreads are in float32, as numpy >= 2 runs the script (numpy 1.x
compared them in float64); they can differ only within one float32 rounding of the 0.8 boundary.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from mans.formats.ntu import read_skeleton

NOISE_MAX_LISTINGS = 11  # rule 5: noise_len_thres
SPREAD_RATIO = 0.8  # rule 7: noise_spr_thres1
SPREAD_NOISE_FRACTION = 0.69754  # rule 7: noise_spr_thres2
RULES = ("length", "spread", "overlap")  # why a body was dropped (DenoisedSequence.dropped)
NUM_ACTORS = 2


class DenoiseError(ValueError):
    """A recording the script cannot denoise (it stops with an exception); `.reason` is a short stable key."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class DenoisedSequence:
    """One recording as the script holds it after denoising (`raw_denoised_joints.pkl`).

    joints: (T, 2, J, 3) float32 camera-space x y z of actor 1 and actor 2, zeros where an actor is absent.
    frames: (T,) int64, the file frame of each row's place in the timeline (rules 1, 10).
    sources: (T, 2) int64, the file frame each actor's joints were read from, -1 where absent. It differs
        from `frames` after a body dropped out (rule 2).
    actors: the bodyIDs placed into actor 1 and into actor 2, in rank order.
    body_ids: every kept bodyID, in rank order (rule 8).
    dropped: {bodyID: rule} for the other bodies, rule among RULES, in the order they were dropped.
    num_actors: 1 or 2, the width of the script's array: (T, 75) or (T, 150) for 25 joints.
    """

    joints: np.ndarray
    frames: np.ndarray
    sources: np.ndarray
    actors: tuple[tuple[int, ...], tuple[int, ...]]
    body_ids: tuple[int, ...]
    dropped: dict[int, str]
    num_actors: int

    def as_script_array(self) -> np.ndarray:
        """The script's own array: (T, num_actors * J * 3) float32, actor 1's joints x y z first."""
        return self.joints[:, : self.num_actors].reshape(len(self.joints), -1)  # (T, 75) or (T, 150)


@dataclasses.dataclass(eq=False)  # compared by identity (list.remove)
class _Body:
    body_id: int
    frames: np.ndarray  # (n,) file frame of each listing
    joints: np.ndarray  # (n, J, 3) float32, C-contiguous like the script's stacked array
    start: int  # timeline position of the first listing
    motion: np.float32 | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.frames) - 1  # rule 2: one row per listing, from the start


def _bodies(skel, timeline: np.ndarray) -> list[_Body]:
    """The bodyIDs in order of first appearance, each with its listings in file order (rules 1-2)."""
    counts = np.asarray(skel.body_counts)
    listed = np.arange(skel.body_ids.shape[1]) < counts[:, None]  # (F, B)
    frames, slots = np.nonzero(listed)  # row-major: file order
    ids = skel.body_ids[frames, slots]
    _, first, group = np.unique(ids, return_index=True, return_inverse=True)
    bodies = []
    for g in np.argsort(first, kind="stable"):
        mine = np.flatnonzero(group == g)
        start = int(np.searchsorted(timeline, frames[mine[0]]))
        joints = np.ascontiguousarray(skel.coords[frames[mine], slots[mine]], np.float32)  # (n, J, 3)
        bodies.append(_Body(int(ids[mine[0]]), frames[mine].astype(np.int64), joints, start))
    return bodies


def _motion(joints: np.ndarray) -> np.float32:
    """Rule 4 on (n, J, 3) float32 joints."""
    return np.sum(np.var(joints.reshape(-1, 3), axis=0))  # (n * J, 3) pooled -> per coordinate -> summed


def _noisy_listings(joints: np.ndarray) -> np.ndarray:
    """Rule 7: (n,) bool, x-extent > 0.8 * y-extent over each listing's joints (float32)."""
    extent = joints.max(axis=1) - joints.min(axis=1)  # (n, 3)
    return ~(extent[:, 0] <= SPREAD_RATIO * extent[:, 1])


def _drop_by_spread(bodies: list[_Body], dropped: dict[int, str]) -> list[_Body]:
    """Rule 7; the bodies left, in order of first appearance."""
    kept = list(bodies)
    for body in bodies:
        if len(kept) == 1:
            break
        noisy = _noisy_listings(body.joints)
        if not noisy.any():
            continue
        if np.count_nonzero(noisy) / len(noisy) >= SPREAD_NOISE_FRACTION:
            kept.remove(body)
            dropped[body.body_id] = "spread"
        else:
            body.motion = min(body.motion, _motion(body.joints[~noisy]))
    return kept


def _select(bodies: list[_Body], dropped: dict[int, str]) -> list[_Body]:
    """Rules 4-8 for two or more bodyIDs: the bodies left, ranked."""
    for body in bodies:
        body.motion = _motion(body.joints)
    kept = []
    for body in bodies:
        if len(body.frames) <= NOISE_MAX_LISTINGS:
            dropped[body.body_id] = "length"
        else:
            kept.append(body)
    if not kept:
        raise DenoiseError(
            "only-noise",
            f"expected a body listed in more than {NOISE_MAX_LISTINGS} frames, found {len(bodies)} bodies "
            f"listed in at most {NOISE_MAX_LISTINGS} (CTR-GCN's script stops with an IndexError here)",
        )
    if len(kept) == 1:
        return kept
    kept = _drop_by_spread(kept, dropped)
    return sorted(kept, key=lambda body: -body.motion)  # stable: ties keep the order of first appearance


def _place(joints: np.ndarray, sources: np.ndarray, actor: int, body: _Body) -> None:
    """Write a body's listings over an actor's rows start..end (rule 9; rule 2's contiguity)."""
    if body.end >= len(joints):
        raise DenoiseError(
            "repeated-body-id",
            f"bodyID {body.body_id} has {len(body.frames)} listings from timeline frame {body.start} of "
            f"{len(joints)}: it is listed twice in a frame (CTR-GCN's script stops with a ValueError here)",
        )
    joints[body.start : body.end + 1, actor] = body.joints
    sources[body.start : body.end + 1, actor] = body.frames


def _fill_actors(ranked: list[_Body], joints: np.ndarray, sources: np.ndarray, dropped: dict[int, str]) -> list:
    """Rule 9: the bodyIDs of actor 1 and actor 2."""
    actors: list[list[int]] = [[], []]
    spans = [[ranked[0].start, ranked[0].end], [0, 0]]  # actor 2's interval starts as [0, 0]
    _place(joints, sources, 0, ranked[0])
    actors[0].append(ranked[0].body_id)
    for body in ranked[1:]:
        for actor, span in enumerate(spans):
            if min(span[1], body.end) - max(span[0], body.start) <= 0:
                _place(joints, sources, actor, body)
                actors[actor].append(body.body_id)
                span[:] = [min(span[0], body.start), max(span[1], body.end)]
                break
        else:
            dropped[body.body_id] = "overlap"
    return actors


def denoise_skeleton(skel) -> DenoisedSequence:
    """One recording (a `mans.formats.ntu.Skeleton`) denoised as CTR-GCN's script does (module docstring).

    Raises: DenoiseError ("no-body", "only-noise", "repeated-body-id").
    """
    timeline = np.flatnonzero(np.asarray(skel.body_counts) > 0)  # rule 1
    if len(timeline) == 0:
        raise DenoiseError("no-body", f"expected a body in some frame, found none in {skel.num_frames}")
    bodies = _bodies(skel, timeline)
    length, num_joints = len(timeline), skel.coords.shape[2]
    joints = np.zeros((length, NUM_ACTORS, num_joints, 3), np.float32)
    sources = np.full((length, NUM_ACTORS), -1, np.int64)
    dropped: dict[int, str] = {}
    if len(bodies) == 1:  # rule 3
        _place(joints, sources, 0, bodies[0])
        ranked, actors, num_actors, rows = bodies, [[bodies[0].body_id], []], 1, np.arange(length)
    else:
        ranked = _select(bodies, dropped)
        if len(ranked) == 1:
            _place(joints, sources, 0, ranked[0])
            actors, num_actors = [[ranked[0].body_id], []], 1
        else:
            actors, num_actors = _fill_actors(ranked, joints, sources, dropped), NUM_ACTORS
        script_rows = joints[:, :num_actors].reshape(length, -1)  # (T, 75) or (T, 150), as the script sums them
        rows = np.flatnonzero(script_rows.sum(axis=1) != 0)  # rule 10
    kept = tuple(body.body_id for body in ranked if body.body_id not in dropped)
    return DenoisedSequence(
        joints=joints[rows], frames=timeline[rows], sources=sources[rows],
        actors=(tuple(actors[0]), tuple(actors[1])), body_ids=kept, dropped=dropped, num_actors=num_actors,
    )


def denoise_file(path: str | os.PathLike) -> DenoisedSequence:
    """`denoise_skeleton` of one `.skeleton` file; SkeletonFormatError for a malformed file."""
    return denoise_skeleton(read_skeleton(path))
