"""Recordings to network images, the dataset descriptions, benchmark splits and the HDF5 files (numpy, h5py,
pandas, pydantic; no Keras)."""
