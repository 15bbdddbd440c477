"""Shared test set-up: the Keras backend is chosen before Keras is imported anywhere."""

import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_NTU = REPO.parent / "shared" / "ntu"
SHARED_DATA = REPO.parent / "shared" / "data"  # real recordings (UT-Kinect's training subjects, MSR Action3D)


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true", help="also run tests marked large")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large: run with --run-large")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def shared_ntu() -> pathlib.Path:
    if not SHARED_NTU.is_dir():
        pytest.skip(f"{SHARED_NTU} not found (NTU sample lists are shared beside the repository)")
    return SHARED_NTU


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found (real recordings are shared beside the repository)")
    return SHARED_DATA
