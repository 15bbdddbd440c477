"""Helpers shared by the command-line scripts (no Keras import here)."""

import contextlib
import os
import sys


@contextlib.contextmanager
def backend_logs_silenced():
    """Silence file descriptor 2 while the Keras backend loads: TensorFlow's C++ start-up notices (oneDNN,
    CUDA) would otherwise precede every message, one-line errors included. TF_CPP_MIN_LOG_LEVEL=0 keeps them."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 3: also the CUDA probe errors of a machine without a GPU
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
