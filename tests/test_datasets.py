"""mans.preprocessing.datasets: the registry, the 120 action names."""

from __future__ import annotations

import json

import pytest

from mans.preprocessing import datasets


def test_action_names():
    names = datasets.ACTION_NAMES
    assert len(names) == 120 and len(set(names)) == 120
    assert names[0] == "drink water" and names[59] == "walking apart from each other"
    assert names[60] == "put on headphone"
    assert names[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert len(datasets.TWO_PERSON_ACTIONS) == 26


@pytest.mark.parametrize("name, classes, benchmarks", [("ntu60", 60, ("xsub", "xview")),
                                                       ("ntu120", 120, ("xsub", "xset"))])
def test_get_dataset(name, classes, benchmarks):
    spec = datasets.get_dataset(name)
    assert (spec.name, spec.num_classes, spec.benchmarks) == (name, classes, benchmarks)
    assert spec.class_names == datasets.ACTION_NAMES[:classes]
    assert (spec.num_joints, spec.max_bodies) == (25, 2)
    assert dict(spec.train_defaults) == {}


def test_unknown_dataset():
    with pytest.raises(ValueError, match="ntu120.*'kinetics'"):
        datasets.get_dataset("kinetics")


def test_detect_dataset():
    assert datasets.detect_dataset([1, 60, 3]) == "ntu60"
    assert datasets.detect_dataset([1, 61]) == "ntu120"
    assert datasets.detect_dataset([]) == "ntu60"


def test_description_training_keys_override_the_preset():
    from mans.preprocessing import description

    desc = description.parse_description(json.loads(description.builtin_path("msr-action3d").read_text()))
    changed = desc.model_copy(update={"training": description.Training(preset="small-data", tarm_identity_start=False,
                                                                       epochs=7)})
    defaults = datasets.spec_from_description(changed).train_defaults
    assert defaults == {**datasets.SMALL_DATA_TRAIN_DEFAULTS, "tarm_identity_start": False, "epochs": 7}


def test_each_small_dataset_trains_with_the_tarm_start_the_pooled_study_chose_for_it():
    """The preset's identity start for UT-Kinect, the demo's start for MSR Action3D and UTD-MHAD (bench/RESULTS.md)."""
    preset = datasets.SMALL_DATA_TRAIN_DEFAULTS
    assert preset["tarm_identity_start"] is True
    assert datasets.get_dataset("utkinect").train_defaults == preset
    assert datasets.get_dataset("msr-action3d").train_defaults == {**preset, "tarm_identity_start": False}
    assert datasets.get_dataset("utd-mhad").train_defaults == {**preset, "epochs": 90, "tarm_identity_start": False}
