"""mans.evaluation.score and evaluate.py with a tiny stand-in model: metrics, reports, BN statistics,
single-file prediction, ensembles of score files and of seeds, and one-line errors."""

import csv
import json
import pathlib

import keras
import numpy as np
import pytest
from test_data import load_script, make_synthetic_h5

from mans.evaluation import fusion
from mans.evaluation import score as evaluation
from mans.training import data as data_lib
from mans.training.data import UsageError

REPO = pathlib.Path(__file__).resolve().parents[1]
evaluate_script = load_script(REPO, "evaluate")


@pytest.fixture(scope="module")
def h5(repo_root, tmp_path_factory):
    return make_synthetic_h5(repo_root, tmp_path_factory.mktemp("evaluation"), samples=60)


def tiny_model(classes: int = 60, size: int = 50) -> keras.Model:
    """Any Keras classifier of (S, S, 3) images will do for evaluation."""
    inputs = keras.Input((size, size, 3), name="skeleton")
    x = keras.layers.Conv2D(4, 3, strides=4, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.keras"
    tiny_model().save(path)
    return path


def test_summarize_by_hand():
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.5, 0.3]])
    labels = np.array([0, 1, 1, 2])
    result = evaluation.summarize(scores, labels, 3)
    assert result["top1"] == 0.25  # only sample 0
    assert result["top5"] == 1.0
    assert result["mean_class_accuracy"] == pytest.approx((1 + 0 + 0) / 3)
    assert result["confusion"].tolist() == [[1, 0, 0], [1, 0, 1], [0, 1, 0]]


def test_evaluate_writes_every_report(checkpoint, h5, tmp_path):
    metrics = evaluation.evaluate(checkpoint, h5, "xview", tmp_path / "out", batch_size=16)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == set(evaluation.REPORT_FILES)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["top1"] == metrics["top1"] and saved["benchmark"] == "xview"
    assert {"top1", "top5", "mean_class_accuracy", "checkpoint", "data", "num_samples"} <= set(saved)
    data = data_lib.open_data(h5)
    test = data_lib.select_splits(data, "xview", val="none").test
    names = (out / "scores_names.txt").read_text().split()
    assert names == sorted(names) == list(data.names[test])
    scores = np.load(out / "scores.npy")
    assert scores.shape == (len(test), 60) and saved["num_samples"] == len(test)
    assert saved["top1"] == np.mean(scores.argmax(1) == data.labels[test])
    with open(out / "per_class_accuracy.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 60 and rows[0]["name"] == "drink water"
    assert sum(int(r["support"]) for r in rows) == len(test)
    assert sum(int(r["correct"]) for r in rows) == round(saved["top1"] * len(test))
    with open(out / "misclassified.csv") as f:
        assert len(list(csv.DictReader(f))) == len(test) - round(saved["top1"] * len(test))
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mirror_test_time_augmentation_scores_the_mirror_images(checkpoint, h5):
    from mans.preprocessing import datasets, preprocess

    data = data_lib.open_data(h5)
    rows = np.arange(6)
    model = keras.saving.load_model(checkpoint)
    columns = preprocess.mirror_columns(datasets.get_dataset(data.dataset).layout, data.size)
    images = data_lib.load_rows(data.path, rows)
    mirrored = evaluation.mirror_images(images, columns)
    np.testing.assert_array_equal(evaluation.mirror_images(mirrored, columns), images)
    expected = model.predict(mirrored, verbose=0)
    np.testing.assert_allclose(evaluation.predict_scores(model, data, rows, tta="mirror"), expected, rtol=1e-5)
    with pytest.raises(UsageError, match="tta must be one of none, mirror"):
        evaluation.predict_scores(model, data, rows, tta="flip")


def test_evaluate_script_tta_averages_both_views(checkpoint, h5, tmp_path):
    assert evaluate_script.main([str(checkpoint), "--data", str(h5), "--benchmark", "xview", "--tta", "mirror",
                                 "--out", str(tmp_path)]) in (0, None)
    data = data_lib.open_data(h5)
    test = data_lib.select_splits(data, "xview", val="none").test
    model = keras.saving.load_model(checkpoint)
    both = (evaluation.predict_scores(model, data, test) + evaluation.predict_scores(model, data, test, tta="mirror"))
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), both / 2, rtol=1e-5, atol=1e-7)
    assert json.loads((tmp_path / "metrics.json").read_text())["tta"] == "mirror"


@pytest.mark.parametrize(("config", "expected"), [
    ({"augment": True, "mirror": 0.5}, "mirror"),  # the small-data default: trained on mirror images
    ({"augment": True, "mirror": 0.0}, "none"),  # NTU's
    ({"augment": False, "mirror": 0.5}, "none"),
    (None, "none"),  # no run record
])  # fmt: skip
def test_tta_defaults_to_mirror_where_the_run_trained_on_mirror_images(checkpoint, h5, tmp_path, config, expected):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "best.keras").write_bytes(checkpoint.read_bytes())
    if config is not None:
        (folder / "config.json").write_text(json.dumps({"config": config, "data_attrs": {}}))
    assert evaluation.evaluate(folder / "best.keras", h5, "xview", tmp_path / "out", batch_size=16)["tta"] == expected
    assert evaluation.evaluate(folder / "best.keras", h5, "xview", tmp_path / "none", tta="none")["tta"] == "none"


def test_recompute_bn_statistics_is_exact():
    keras.utils.set_random_seed(1)
    model = tiny_model()
    images = np.random.default_rng(0).normal(2.0, 3.0, (20, 50, 50, 3)).astype(np.float32)
    assert evaluation.recompute_bn_statistics(model, images, batch_size=6) == 1
    inputs = np.asarray(keras.Model(model.input, model.get_layer("bn").input)(images)).reshape(-1, 4)
    np.testing.assert_allclose(model.get_layer("bn").moving_mean, inputs.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.get_layer("bn").moving_variance, inputs.var(0), rtol=1e-4)


def test_predict_files_uses_the_run_record(checkpoint, h5, tmp_path):
    record = {"config": {}, "data_attrs": dict(data_lib.open_data(h5).attrs)}
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "best.keras").write_bytes(checkpoint.read_bytes())
    (folder / "config.json").write_text(json.dumps(record))
    files = sorted((h5.parent / "raw").glob("*.skeleton"))[:2]
    results = evaluation.predict_files(folder / "best.keras", files, top=5)
    assert [r[0] for r in results] == [str(f) for f in files]
    for _, top in results:
        assert len(top) == 5 and top[0][1] >= top[-1][1] and sum(p for _, p in top) <= 1 + 1e-6
    with pytest.raises(UsageError, match="config.json"):
        evaluation.predict_files(checkpoint, files)  # no run record and no --data


def write_scores(folder: pathlib.Path, scores: np.ndarray, names: list[str]) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "scores.npy", scores)
    (folder / "scores_names.txt").write_text("".join(f"{n}\n" for n in names))
    return folder / "scores.npy"


def test_ensemble_fuses_and_refuses_mismatches(h5, tmp_path):
    data = data_lib.open_data(h5)
    test = data_lib.select_splits(data, "xsub", val="none").test
    names, labels = list(data.names[test]), data.labels[test]
    rng = np.random.default_rng(0)
    a = rng.random((len(test), 60)).astype(np.float32)
    b = np.eye(60, dtype=np.float32)[labels]  # a perfect model
    fa, fb = write_scores(tmp_path / "a", a, names), write_scores(tmp_path / "b", b, names)
    fused = fusion.ensemble([fa, fb], h5, "xsub", weights=[1.0, 2.0])
    assert fused["top1"] == 1.0 and [m["weight"] for m in fused["members"]] == [1.0, 2.0]
    assert fused["top1"] == np.mean((a + 2 * b).argmax(1) == labels)
    swapped = write_scores(tmp_path / "c", a[::-1], names[::-1])
    with pytest.raises(UsageError, match="order"):
        fusion.ensemble([fa, swapped], h5, "xsub")
    short = write_scores(tmp_path / "d", a[:-1], names[:-1])
    with pytest.raises(UsageError, match="shape"):
        fusion.ensemble([fa, short], h5, "xsub")
    with pytest.raises(UsageError, match="test split"):
        fusion.ensemble([short, short], h5, "xsub")
    (tmp_path / "e").mkdir()
    np.save(tmp_path / "e" / "scores.npy", a)
    with pytest.raises(UsageError, match="scores_names.txt"):
        fusion.ensemble([fa, tmp_path / "e" / "scores.npy"], h5, "xsub")
    with pytest.raises(UsageError, match="one weight per"):
        fusion.ensemble([fa, fb], h5, "xsub", weights=[1.0])


def script_error(capsys, *argv) -> str:
    code = evaluate_script.main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_inputs_are_one_line_errors(capsys, checkpoint, h5, tmp_path):
    fake = tmp_path / "fake.keras"
    fake.write_text("not a zip")
    assert "Keras checkpoint" in script_error(capsys, fake, "--data", h5)
    assert "no such file" in script_error(capsys, tmp_path / "absent.keras", "--data", h5)
    assert "absent.h5" in script_error(capsys, checkpoint, "--data", tmp_path / "absent.h5")
    assert "xview" in script_error(capsys, checkpoint, "--data", h5, "--benchmark", "xset")
    other = tmp_path / "other.keras"
    tiny_model(classes=120).save(other)
    assert "120 classes" in script_error(capsys, other, "--data", h5)
    small = tmp_path / "small.keras"
    tiny_model(size=60).save(small)
    assert "(60, 60, 3)" in script_error(capsys, small, "--data", h5)
    assert "at least 2" in script_error(capsys, "--ensemble", tmp_path / "x.npy", "--data", h5)
    assert not (tmp_path / "metrics.json").exists()


def test_loso_evaluation_names_the_missing_fold_checkpoints(tmp_path):
    (tmp_path / "loso-1").mkdir()
    (tmp_path / "loso-1" / "best.keras").write_bytes(b"")
    with pytest.raises(UsageError, match=r"one checkpoint per loso fold .* found none at .*loso-2.* and 8 more"):
        evaluation.evaluate_folds(tmp_path, tmp_path / "utk.h5", "loso")


def test_seed_ensemble_evaluates_each_seed_and_fuses_their_mean(h5, tmp_path, capsys):
    run = tmp_path / "run"
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        (run / f"seed-{seed}").mkdir(parents=True)
        tiny_model().save(run / f"seed-{seed}" / "best.keras")
    assert evaluate_script.main([str(run), "--data", str(h5), "--benchmark", "xsub", "--batch-size", "16"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((run / "xsub_seeds.json").read_text())
    assert summary["seeds"] == [1, 2] and "seed 1: top-1" in printed and "fused scores: top-1" in printed
    members = [fusion.load_scores(run / f"seed-{seed}" / "scores.npy") for seed in (1, 2)]
    data = data_lib.open_data(h5)
    labels = data.labels[data_lib.select_splits(data, "xsub", val="none").test]
    fused = (members[0][0] + members[1][0]) / 2
    assert summary["top1"] == pytest.approx(np.mean(fused.argmax(1) == labels))
    assert summary["member_top1"] == [pytest.approx(np.mean(s.argmax(1) == labels)) for s, _ in members]
    np.testing.assert_allclose(np.load(run / "scores.npy"), fused, rtol=1e-6)
    assert (run / "metrics.json").is_file() and (run / "seed-2" / "metrics.json").is_file()
    (run / "seed-3").mkdir()
    with pytest.raises(UsageError, match=r"best.keras in every seed folder .*seed-3"):
        fusion.evaluate_seeds(run, h5, "xsub")
