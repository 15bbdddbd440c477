"""Helpers shared by the command-line scripts (no Keras import here)."""

import contextlib
import os
import signal
import sys

TERMINATED_EXIT_STATUS = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C's KeyboardInterrupt, so temporary files are removed on the way out."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_exception():
    """Within the block, SIGTERM raises `Terminated` in the main thread instead of ending the process at once."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
