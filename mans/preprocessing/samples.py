"""The stored sample tensors: only the rows of each S x S x 3 image that can carry data, and the images read back.

Format "mans-hdf5/2" (written by `mans.preprocessing.storage`) keeps, of each sample's image, the rows from its first to
its last non-zero row (time padding and empty frames at either end are left out) and only the C joint
columns the layout fills (bodies x joints: 50 for NTU, 20 for Kinect v1; the padded columns are zero):

    /rows        (R, C, 3) float32, contiguous and uncompressed: every sample's rows, one sample after another
    /row_offset  (N,) int64, where sample i's rows begin in /rows
    /row_count   (N,) int32, how many rows it has (0 for an all-zero image)
    /first_row   (N,) int32, the image row its first stored row belongs to
    attrs column_start = (S - C) // 2, the image column of the first stored column; columns = C

Image i is zeros (S, S, 3) with image[first_row:first_row + count, column_start:column_start + C] = its rows:
exactly the bytes of the image `mans.preprocessing.preprocess` makes, which format "mans-hdf5/1" stored whole as /x
(N, S, S, 3), gzip-compressed in chunks of one image. Both formats are read here.

/rows is contiguous so that it can be memory-mapped: a random batch is a gather at memory speed, with no
decompression and no per-sample HDF5 call. At S = 224 a sample of about 100 frames keeps about 10 % of its
image's bytes.
"""

from __future__ import annotations

import os
import pathlib

import h5py
import numpy as np

ROW_COLUMNS = ("row_offset", "row_count", "first_row")
_COPY_ROWS = 1 << 16  # rows copied at once from the temporary file into /rows


def crop_rows(image: np.ndarray) -> tuple[int, np.ndarray]:
    """(first_row, rows): the rows of an (S, S, 3) float32 image from its first to its last row with a byte
    other than zero, (n, S, 3); -0.0 (the sign fixes negate empty frames too) counts as data."""
    carrying = np.flatnonzero(np.any(_bits(image) != 0, axis=(1, 2)))
    if len(carrying) == 0:
        return 0, image[:0]
    first, last = int(carrying[0]), int(carrying[-1])
    return first, image[first : last + 1]


def _bits(values: np.ndarray) -> np.ndarray:
    """float32 values as their bit patterns (uint32), so that -0.0 is not zero."""
    return np.ascontiguousarray(values, "<f4").view(np.uint32)


class RowsWriter:
    """Streams the cropped rows of each sample into a temporary file; `finish` copies them into the HDF5 file.

    Args: tmp: the temporary raw file (removed by `finish` and `discard`). size: S. columns: C.
    """

    def __init__(self, tmp: pathlib.Path, size: int, columns: int):
        self.tmp, self.size, self.columns = tmp, int(size), int(columns)
        self.column_start = (self.size - self.columns) // 2
        self.offsets: list[int] = []
        self.counts: list[int] = []
        self.first_rows: list[int] = []
        self.total = 0
        self._file = open(tmp, "wb")

    def add(self, first_row: int, rows: np.ndarray) -> None:
        """One sample: `rows` (n, S, 3) float32 from `crop_rows`, the padded columns zero."""
        kept = rows[:, self.column_start : self.column_start + self.columns]
        if np.count_nonzero(_bits(rows)) != np.count_nonzero(_bits(kept)):
            raise AssertionError(f"a sample has values outside joint columns {self.column_start}-"
                                 f"{self.column_start + self.columns - 1} of {self.size}")
        self._file.write(np.ascontiguousarray(kept, "<f4").tobytes())
        self.offsets.append(self.total)
        self.counts.append(len(rows))
        self.first_rows.append(int(first_row))
        self.total += len(rows)

    def finish(self, h5: h5py.File) -> None:
        """Write /rows, the index columns and the attributes into `h5`, then remove the temporary file."""
        self._file.close()
        h5.create_dataset("row_offset", data=np.array(self.offsets, np.int64))
        h5.create_dataset("row_count", data=np.array(self.counts, np.int32))
        h5.create_dataset("first_row", data=np.array(self.first_rows, np.int32))
        rows = h5.create_dataset("rows", shape=(self.total, self.columns, 3), dtype="<f4")  # contiguous
        raw = np.memmap(self.tmp, "<f4", "r", shape=(self.total, self.columns, 3)) if self.total else None
        for start in range(0, self.total, _COPY_ROWS):
            rows[start : start + _COPY_ROWS] = raw[start : start + _COPY_ROWS]
        del raw
        h5.attrs.update(column_start=self.column_start, columns=self.columns)
        self.tmp.unlink()

    def discard(self) -> None:
        """Close and remove the temporary file (an interrupted conversion)."""
        self._file.close()
        self.tmp.unlink(missing_ok=True)


class PackedImages:
    """Sample rows in memory (format 2), served as (B, S, S, 3) images by position.

    Attributes: rows (R, C, 3) float32; offset, count, first_row (n,) per position; size S; column_start.
    """

    def __init__(self, rows, offset, count, first_row, size: int, column_start: int):
        self.rows = rows
        self.offset = np.asarray(offset, np.int64)
        self.count = np.asarray(count, np.int64)
        self.first_row = np.asarray(first_row, np.int64)
        self.size, self.column_start = int(size), int(column_start)

    def __len__(self) -> int:
        return len(self.offset)

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes)

    def images(self, positions: np.ndarray) -> np.ndarray:
        """The images of `positions`: (len(positions), S, S, 3) float32."""
        positions = np.asarray(positions, np.int64)
        columns = self.rows.shape[1]
        out = np.zeros((len(positions), self.size, self.size, 3), np.float32)
        target = out[:, :, self.column_start : self.column_start + columns]  # (B, S, C, 3), a view
        for i, p in enumerate(positions):  # slices copy at memory speed; one fancy-index scatter is slower
            start, n, first = self.offset[p], self.count[p], self.first_row[p]
            target[i, first : first + n] = self.rows[start : start + n]
        return out


def _row_index(offset: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The indices in /rows of every row of several samples (offsets `offset`, `count` rows each), in order."""
    sample = np.repeat(np.arange(len(count)), count)
    return offset[sample] + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)


class DenseImages:
    """Whole images in memory (format 1, or any (n, S, S, 3) array), served by position."""

    def __init__(self, x: np.ndarray):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    @property
    def nbytes(self) -> int:
        return int(self.x.nbytes)

    def images(self, positions: np.ndarray) -> np.ndarray:
        return self.x[np.asarray(positions, np.int64)]


class ImageReader:
    """The images of a mans HDF5 file (format 1 or 2), by row index; open once per process.

    Format 2 memory-maps /rows (falling back to HDF5 reads if /rows is not a plain contiguous dataset).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self._h5 = h5py.File(self.path, "r")
        self.packed = "rows" in self._h5
        if not self.packed:
            self.x = self._h5["x"]
            self.size = int(self.x.shape[1])
            return
        self.size = int(self._h5.attrs["size"])
        self.column_start = int(self._h5.attrs["column_start"])
        self.offset, self.count, self.first_row = (self._h5[key][()].astype(np.int64) for key in ROW_COLUMNS)
        dataset = self._h5["rows"]
        location = dataset.id.get_offset() if dataset.chunks is None else None
        if location is None or dataset.shape[0] == 0:
            self.rows = dataset
        else:
            self.rows = np.memmap(self.path, "<f4", "r", offset=location, shape=dataset.shape)

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0]) if not self.packed else len(self.offset)

    def stored_bytes(self, rows: np.ndarray) -> int:
        """Bytes the samples `rows` take in memory once loaded (`load`)."""
        rows = np.asarray(rows, np.int64)
        if not self.packed:
            return len(rows) * self.size * self.size * 3 * 4
        return int(self.count[rows].sum()) * self.rows.shape[1] * 3 * 4

    def _packed(self, rows: np.ndarray) -> PackedImages:
        """A view of `rows` over the file's /rows (nothing read yet)."""
        return PackedImages(self.rows, self.offset[rows], self.count[rows], self.first_row[rows], self.size,
                            self.column_start)

    def images(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), S, S, 3) float32 images of `rows` (ascending row indices), read from the file."""
        rows = np.asarray(rows, np.int64)
        if not self.packed:
            return self.x[rows].astype(np.float32, copy=False)
        return self._packed(rows).images(np.arange(len(rows)))

    def load(self, rows: np.ndarray) -> PackedImages | DenseImages:
        """The samples `rows` (ascending) copied into memory, in the compact form of the file's format."""
        rows = np.asarray(rows, np.int64)
        if not self.packed:
            return DenseImages(_load_dense(self.x, rows))
        count = self.count[rows]
        offset = np.cumsum(count) - count
        if isinstance(self.rows, np.ndarray):
            packed = np.ascontiguousarray(self.rows[_row_index(self.offset[rows], count)], np.float32)  # one gather
        else:
            packed = np.concatenate([self.rows[start : start + n] for start, n in zip(self.offset[rows], count,
                                                                                       strict=True)])
        return PackedImages(packed, offset, count, self.first_row[rows], self.size, self.column_start)

    def close(self) -> None:
        self.rows = self.x = None
        self._h5.close()


def _load_dense(x: h5py.Dataset, rows: np.ndarray, block: int = 512) -> np.ndarray:
    """Format 1: the images of `rows` read in contiguous blocks (much faster than a fancy index over many rows)."""
    out = np.empty((len(rows), *x.shape[1:]), dtype=np.float32)
    done = 0
    while done < len(rows):
        start = int(rows[done])
        stop_row = start + block
        count = int(np.searchsorted(rows[done:], stop_row))
        chunk = x[start : min(stop_row, x.shape[0])]
        out[done : done + count] = chunk[rows[done : done + count] - start]
        done += count
    return out


def read_images(path: str | os.PathLike, rows: np.ndarray | None = None) -> np.ndarray:
    """The (len(rows), S, S, 3) float32 images of `rows` (default: all) of a mans HDF5 file, either format."""
    reader = ImageReader(path)
    try:
        rows = np.arange(reader.num_samples) if rows is None else np.asarray(rows, np.int64)
        return reader.load(rows).images(np.arange(len(rows)))
    finally:
        reader.close()


def write_format_1(path: str | os.PathLike, images: np.ndarray, source: str | os.PathLike) -> None:
    """`source`'s samples as format 1 stored them (/x (N, S, S, 3), gzip level 4 + shuffle, one image per chunk),
    with `images` as their images: the files of earlier versions, for tests and benchmarks."""
    size = images.shape[1]
    with h5py.File(source) as src, h5py.File(path, "w") as h5:
        h5.create_dataset("x", data=images, chunks=(1, size, size, 3), compression="gzip", compression_opts=4,
                          shuffle=True)
        for key in ("label", "setup", "camera", "performer", "replication", "frames", "name"):
            h5[key] = src[key][()]
        h5.attrs.update({k: v for k, v in src.attrs.items() if k not in ("columns", "column_start")})
        h5.attrs["format"] = "mans-hdf5/1"
