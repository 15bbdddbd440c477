"""Training runs: HDF5 files to batches, settings, run folders, checkpoints and resumption, devices."""
