"""Shared test set-up: the Keras backend is chosen before Keras is imported anywhere."""

import os
import pathlib

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
# Real recordings (utkinect_train/, msr_action3d/, utd_mhad_train/) and NTU's sample lists: where the variables
# name them, else in the development machines' shared folder beside the clone; tests skip where they are absent.
SHARED_NTU = pathlib.Path(os.environ.get("MANS_TEST_NTU_LISTS", REPO.parent / "shared" / "ntu"))
SHARED_DATA = pathlib.Path(os.environ.get("MANS_TEST_DATA", REPO.parent / "shared" / "data"))


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
        pytest.skip(f"{SHARED_NTU} not found (NTU's sample lists; MANS_TEST_NTU_LISTS names the folder)")
    return SHARED_NTU


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found (real recordings; MANS_TEST_DATA names the folder)")
    return SHARED_DATA
