"""Tests for mans.formats.ntu: hand-written files checked value by value, and every malformed input."""

import numpy as np
import pytest

from mans.formats import ntu as skeleton_io
from mans.formats.ntu import (
    REASONS,
    SampleName,
    SkeletonFormatError,
    parse_sample_name,
    parse_skeleton_bytes,
    read_skeleton,
)

NAME = "S001C001P001R001A001.skeleton"
ID_A, ID_B, ID_C = 72057594037931101, 72057594037931102, 18446744073709551615  # float64 can't hold these


def joint_values(frame: int, slot: int, joint: int) -> tuple[float, float, float, int]:
    """x y z trackingState of a joint in the hand-written files: every value differs."""
    return frame + 0.01 * joint, -slot - 0.001 * joint, 3.5 + 0.1 * slot, joint % 3


def body_lines(frame: int, slot: int, body_id: int, joints: int = 25) -> list[str]:
    lines = [f"{body_id} 0 1 1 1 1 0 0.01456049 -0.2715365 2", str(joints)]
    for joint in range(joints):
        x, y, z, state = joint_values(frame, slot, joint)
        lines.append(f"{x:.7g} {y:.7g} {z:.7g} 277.6 191.6 1036.3 519.6 -0.2369704 0.04954211 0.9693586 0 {state}")
    return lines


def skeleton_text(frames: list[list[int]], eol: str = "\r\n") -> bytes:
    """A file whose frame t lists the bodies frames[t] (IDs) in that order."""
    lines = [str(len(frames))]
    for t, ids in enumerate(frames):
        lines.append(str(len(ids)))
        for slot, body_id in enumerate(ids):
            lines += body_lines(t, slot, body_id)
    return (eol.join(lines) + eol).encode()


def check_values(skeleton, frames: list[list[int]]) -> None:
    width = max(len(ids) for ids in frames)
    assert skeleton.num_frames == len(frames)
    assert skeleton.coords.shape == (len(frames), width, 25, 3) and skeleton.coords.dtype == np.float32
    assert skeleton.tracking.shape == (len(frames), width, 25) and skeleton.tracking.dtype == np.int8
    assert skeleton.body_ids.shape == (len(frames), width) and skeleton.body_ids.dtype == np.uint64
    assert skeleton.body_counts.dtype == np.int32
    np.testing.assert_array_equal(skeleton.body_counts, [len(ids) for ids in frames])
    for t, ids in enumerate(frames):
        assert [int(v) for v in skeleton.body_ids[t]] == ids + [0] * (width - len(ids))
        for slot in range(width):
            for joint in range(25):
                if slot < len(ids):
                    *xyz, state = joint_values(t, slot, joint)
                else:
                    xyz, state = (0.0, 0.0, 0.0), 0
                np.testing.assert_allclose(skeleton.coords[t, slot, joint], xyz, rtol=1e-6, atol=1e-7)
                assert skeleton.tracking[t, slot, joint] == state


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
@pytest.mark.parametrize(
    "frames",
    [
        [[ID_A], [ID_A]],  # one body
        [[ID_A, ID_B], [ID_B, ID_A], [ID_A, ID_B]],  # two bodies, listed in changing order
        [[ID_A], [ID_A, ID_B, ID_C], [ID_B]],  # a frame with three bodies
        [[], [ID_A], [], [ID_A, ID_B], []],  # frames with no body
    ],
    ids=["one-body", "two-bodies", "three-bodies", "empty-frames"],
)
def test_values(frames, eol):
    check_values(parse_skeleton_bytes(skeleton_text(frames, eol), NAME), frames)


def test_exact_64_bit_ids():
    skeleton = parse_skeleton_bytes(skeleton_text([[ID_A, ID_C]]))
    assert int(skeleton.body_ids[0, 0]) == 72057594037931101
    assert int(skeleton.body_ids[0, 1]) == 2**64 - 1


def test_read_skeleton_from_file(tmp_path):
    frames = [[ID_A], [ID_A, ID_B]]
    path = tmp_path / NAME
    path.write_bytes(skeleton_text(frames))
    check_values(read_skeleton(path), frames)
    check_values(read_skeleton(str(path)), frames)


def test_tolerates_extra_whitespace_and_trailing_blank_lines():
    frames = [[ID_A], [ID_A, ID_B]]
    text = skeleton_text(frames).decode()
    messy = text.replace(" 0 ", "  0\t", 7).replace(" 2\r\n", " 2   \r\n") + "\r\n \r\n\r\n"
    check_values(parse_skeleton_bytes(messy.encode(), NAME), frames)


def test_trailing_spaces_keep_the_fast_path():
    frames = [[ID_A, ID_B], [ID_B]]
    data = skeleton_text(frames).replace(b"\r\n", b"  \r\n")
    reader = skeleton_io._Reader(NAME, data)
    assert reader.joints_fast(reader.walk().joint_starts) is not None
    check_values(parse_skeleton_bytes(data, NAME), frames)


def test_old_mac_line_ends():
    frames = [[ID_A]]
    check_values(parse_skeleton_bytes(skeleton_text(frames, "\r")), frames)


def lines_of(frames: list[list[int]]) -> list[str]:
    return skeleton_text(frames, "\n").decode().splitlines()


def replace_line(lines: list[str], number: int, text: str) -> bytes:
    """The file with 1-based line `number` replaced by `text`."""
    return "\r\n".join(lines[: number - 1] + [text] + lines[number:]).encode() + b"\r\n"


ONE = lines_of([[ID_A], [ID_A]])  # line 1 frames, 2 bodies, 3 info, 4 joints, 5-29 joint lines, 30 bodies ...
FIRST_JOINT = ONE[4]


MALFORMED = [  # (file contents, reason, line, part of the message)
    (b"", "truncated", 1, "expected the frame count, found end of file"),
    ("\r\n".join(ONE[:29]).encode(), "truncated", 30, "expected a body count, found end of file"),
    ("\r\n".join(ONE[:20]).encode(), "truncated", 21, "expected 25 joint lines, found end of file"),
    ("\r\n".join(ONE[:3]).encode(), "truncated", 4, "expected a joint count"),
    (b"0\r\n", "zero-frames", 1, "expected at least 1 frame, found 0"),
    (b"3\r\n0\r\n0\r\n0\r\n", "no-body", 1, "expected a body in at least one frame, found none in 3 frames"),
    (replace_line(ONE, 4, "24"), "joint-count", 4, "expected 25 joints, found 24"),
    (replace_line(ONE, 1, "two"), "non-numeric", 1, "expected the frame count (an integer >= 0), found 'two'"),
    (replace_line(ONE, 2, "-1"), "non-numeric", 2, "expected a body count (an integer >= 0), found '-1'"),
    (replace_line(ONE, 3, "x7205 0 1 1 1 1 0 0.1 0.2 2"), "non-numeric", 3, "expected a 64-bit body ID"),
    (replace_line(ONE, 3, f"{2**64} 0 1 1 1 1 0 0.1 0.2 2"), "non-numeric", 3, "expected a 64-bit body ID"),
    (replace_line(ONE, 3, f"{ID_A} 0 1 1 1 1 0 0.1 abc 2"), "non-numeric", 3, "found 'abc'"),
    (replace_line(ONE, 3, f"{ID_A} 0 1 1 1 1 0 0.1 2"), "field-count", 3, "expected 10 body info fields"),
    (replace_line(ONE, 9, FIRST_JOINT.replace("277.6", "27x.6")), "non-numeric", 9, "found '27x.6'"),
    (replace_line(ONE, 9, FIRST_JOINT.replace("3.5", "3.5.1")), "non-numeric", 9, "found '3.5.1'"),
    (replace_line(ONE, 9, FIRST_JOINT + " 7"), "field-count", 9, "expected 12 joint fields, found 13"),
    (replace_line(ONE, 29, FIRST_JOINT.rsplit(" ", 1)[0]), "field-count", 29, "found 11"),
    (replace_line(ONE, 9, FIRST_JOINT.replace("3.5", "nan")), "non-finite", 9, "found 0 0 nan 0"),
    (replace_line(ONE, 9, FIRST_JOINT.replace("3.5", "-inf")), "non-finite", 9, "expected finite x y z"),
    (replace_line(ONE, 9, FIRST_JOINT.replace("3.5", "1e999")), "non-finite", 9, "expected finite x y z"),
    ("\r\n".join(ONE + ["1"]).encode(), "trailing-data", 58, "expected end of file after 2 frames"),
]


@pytest.mark.parametrize("data, reason, line, expected", MALFORMED, ids=[f"{c[1]}@{c[2]}" for c in MALFORMED])
def test_malformed(data, reason, line, expected):
    with pytest.raises(SkeletonFormatError) as info:
        parse_skeleton_bytes(data, NAME)
    error = info.value
    assert error.reason == reason and reason in REASONS
    assert error.line == line and error.file == NAME
    assert str(error).startswith(f"{NAME}, line {line}: ")
    assert expected in str(error)
    assert "\n" not in str(error)
    assert isinstance(error, ValueError)


def test_error_names_the_file(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(replace_line(ONE, 4, "24"))
    expected = r"^S001C001P001R001A001\.skeleton, line 4: expected 25 joints, found 24$"
    with pytest.raises(SkeletonFormatError, match=expected):
        read_skeleton(path)


def test_long_tokens_are_shortened():
    with pytest.raises(SkeletonFormatError) as info:
        parse_skeleton_bytes(b"x" * 500 + b"\r\n", NAME)
    assert len(str(info.value)) < 150


def test_sample_name():
    name = parse_sample_name("/data/nturgbd/S017C003P020R002A060.skeleton")
    assert name == SampleName(setup=17, camera=3, performer=20, replication=2, action=60)
    assert name.label == 59
    assert str(name) == "S017C003P020R002A060"
    assert parse_sample_name("S001C001P001R001A120") == SampleName(1, 1, 1, 1, 120)


@pytest.mark.parametrize("bad", ["S01C001P001R001A001.skeleton", "notes.txt", "s001c001p001r001a001", ""])
def test_bad_sample_name(bad):
    with pytest.raises(SkeletonFormatError, match="expected a name like") as info:
        parse_sample_name(bad)
    assert info.value.reason == "bad-name"
    assert str(info.value).startswith(bad)
