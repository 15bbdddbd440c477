"""mans.formats: one reader interface over the raw formats (NTU .skeleton, UT-Kinect joint files)."""

import shutil

import numpy as np
import pytest

from mans import formats as recordings
from mans.preprocessing import synthetic
from mans.preprocessing.preprocess import KINECT_V1_LAYOUT, NTU_LAYOUT


def test_bones_join_joints_of_their_layout():
    for fmt, layout, count in ((recordings.NTU_SKELETON, NTU_LAYOUT, 24),
                               (recordings.UTKINECT_JOINTS, KINECT_V1_LAYOUT, 19)):
        assert fmt.layout == layout and len(fmt.bones) == count
        joints = {j for bone in fmt.bones for j in bone}
        assert joints == set(range(layout.num_joints))  # a tree over every joint
        assert len(set(map(frozenset, fmt.bones))) == count == layout.num_joints - 1


def test_formats_by_dataset_and_by_name(tmp_path):
    assert recordings.format_for_dataset("ntu120") is recordings.NTU_SKELETON
    assert recordings.format_for_dataset("utkinect") is recordings.UTKINECT_JOINTS
    with pytest.raises(ValueError, match="no raw recording format is known for dataset 'other'"):
        recordings.format_for_dataset("other")
    assert recordings.format_for_file("a/S001C001P001R001A001.skeleton") is recordings.NTU_SKELETON
    assert recordings.format_for_file("joints_s01_e01.txt") is recordings.UTKINECT_JOINTS
    with pytest.raises(ValueError, match="notes.txt: not a recording format"):
        recordings.format_for_file("notes.txt")
    with pytest.raises(ValueError, match="expected NTU RGB\\+D .skeleton files, found a file of another name"):
        recordings.read_recordings(tmp_path / "joints_s01_e01.txt", recordings.NTU_SKELETON)


def test_utkinect_file_gives_its_labelled_segments_or_the_whole_sequence(tmp_path):
    synthetic.write_synthetic_utkinect(tmp_path / "utk", subjects=1, episodes=1, nan_segment=False)
    path = tmp_path / "utk" / "joints" / "joints_s01_e01.txt"
    segments = recordings.read_recordings(path, recordings.UTKINECT_JOINTS)
    assert len(segments) == 10 and segments[-1].name == "s01_e01_clapHands"
    shutil.copy(path, tmp_path / "joints_s01_e01.txt")  # outside the dataset folder: no labels
    (whole,) = recordings.read_recordings(tmp_path / "joints_s01_e01.txt", recordings.UTKINECT_JOINTS)
    assert whole.name == "s01_e01" and whole.skeleton.num_frames > sum(s.skeleton.num_frames for s in segments)


def test_skeleton_from_frames_lists_bodies_by_slot():
    frames = [np.ones((1, 25, 3)), np.zeros((0, 25, 3)), np.full((2, 25, 3), 2.0)]
    skel = recordings.skeleton_from_frames(frames, 25)
    assert skel.coords.shape == (3, 2, 25, 3) and skel.body_counts.tolist() == [1, 0, 2]
    assert skel.body_ids.tolist() == [[1, 0], [0, 0], [1, 2]]
    assert [f.shape[0] for f in recordings.listed_frames(skel)] == [1, 0, 2]
    empty = recordings.skeleton_from_frames([], 25)
    assert empty.num_frames == 0
