"""mans.preprocessing.samples: the stored rows give back, byte for byte, the images `preprocess` makes (today's model
input, which format 1 stored whole), at 50 and 224, faithful and denoised, padded and resampled frames; from
the file and from memory; and format 1 files still read."""

import h5py
import numpy as np
import pytest

from mans.formats.ntu import read_skeleton
from mans.preprocessing import preprocess, samples, storage
from mans.preprocessing.synthetic import write_synthetic_dataset
from mans.training import data as data_lib

SETTINGS = [(mode, frames, size) for mode in preprocess.MODES for frames in preprocess.FRAMES for size in (50, 224)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples") / "syn"
    write_synthetic_dataset(folder, 10, num_actions=5, seed=7, frames=(20, 300))  # shorter and longer than S
    return folder


def todays_images(folder, names, mode: str, frames: str, size: int) -> np.ndarray:
    """The model's input as it was before the compact layout: one whole image per sample."""
    return np.stack([preprocess.process_skeleton(read_skeleton(folder / f"{name}.skeleton"), mode, size,
                                                 frames=frames) for name in names])


@pytest.mark.parametrize(("mode", "frames", "size"), SETTINGS)
def test_batches_are_todays_images_byte_for_byte(folder, tmp_path, mode, frames, size):
    out = tmp_path / "new.h5"
    storage.convert_folder(folder, out, mode=mode, size=size, frames=frames, workers=1, progress=False)
    data = data_lib.open_data(out)
    expected = todays_images(folder, data.names, mode, frames, size)
    rows = np.arange(data.num_samples)
    from_file = data_lib.SkeletonBatches(out, rows, data.labels, 4)
    from_memory = data_lib.SkeletonBatches(out, rows, data.labels, 4, x=data_lib.load_split(out, rows))
    for batches in (from_file, from_memory):
        got = np.concatenate([batches[i][0] for i in range(len(batches))])
        assert got.dtype == np.float32 and got.tobytes() == expected.tobytes()
    from_file.close()
    shuffled = data_lib.SkeletonBatches(out, rows[1::2], data.labels, 2, shuffle_seed=3, x=None)
    positions = shuffled.positions(1)
    assert shuffled[1][0].tobytes() == expected[rows[1::2][positions]].tobytes()
    old = tmp_path / "old.h5"
    samples.write_format_1(old, expected, out)
    old_data = data_lib.open_data(old)
    assert old_data.size == size and list(old_data.names) == list(data.names)
    for x in (None, data_lib.load_split(old, rows)):
        old_batches = data_lib.SkeletonBatches(old, rows, old_data.labels, 4, x=x)
        assert np.concatenate([old_batches[i][0] for i in range(len(old_batches))]).tobytes() == expected.tobytes()
    assert data_lib.split_bytes(out, rows) <= data_lib.split_bytes(old, rows) == expected.nbytes


def test_the_stored_rows_are_only_what_carries_data(folder, tmp_path):
    out = tmp_path / "224.h5"
    storage.convert_folder(folder, out, size=224, workers=1, progress=False)
    with h5py.File(out) as h5:
        count, first, frames = h5["row_count"][()], h5["first_row"][()], h5["frames"][()]
        assert h5["rows"].shape == (count.sum(), 50, 3) and h5.attrs["column_start"] == 87
    assert (count <= np.minimum(frames, 224)).all() and (first + count <= 224).all()
    images = samples.read_images(out)
    outside = np.ones(224, bool)
    for image, start, n in zip(images, first, count, strict=True):
        outside[:] = True
        outside[start : start + n] = False
        assert not image[outside].any() and not image[:, :87].any() and not image[:, 137:].any()


def test_a_row_count_that_disagrees_is_named(folder, tmp_path):
    out = tmp_path / "bad.h5"
    storage.convert_folder(folder, out, workers=1, progress=False)
    with h5py.File(out, "a") as h5:
        del h5["row_count"]
        h5["row_count"] = np.zeros(3, np.int32)
    with pytest.raises(ValueError, match="bad.h5: expected row_offset, row_count, first_row of shape"):
        data_lib.open_data(out)
